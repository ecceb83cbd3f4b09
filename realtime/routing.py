from django.urls import path

from realtime.consumers import WorkspaceEventsConsumer

websocket_urlpatterns = [
    path(
        "ws/workspaces/<str:workspace_id>/events/",
        WorkspaceEventsConsumer.as_asgi(),
        name="workspace-events",
    ),
]
