from django.urls import path, re_path

from realtime.consumers import WorkspaceEventsConsumer, not_found

websocket_urlpatterns = [
    path(
        "ws/workspaces/<str:workspace_id>/events/",
        WorkspaceEventsConsumer.as_asgi(),
        name="workspace-events",
    ),
    re_path(r"", not_found),
]
