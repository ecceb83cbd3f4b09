"""The daemon-facing API under /api/daemon/ (token-authenticated JSON, see `schema`), and its
OpenAPI description."""

from django.urls import include, path

from daemon_api.schema import schema
from daemon_api.views import runtimes, tasks

daemon_urlpatterns = [
    path("register", runtimes.register, name="daemon-register"),
    path("heartbeat", runtimes.heartbeat, name="daemon-heartbeat"),
    path("deregister", runtimes.deregister, name="daemon-deregister"),
    path("runtimes/<str:runtime_id>/tasks/claim", tasks.claim, name="daemon-task-claim"),
    path("tasks/<str:task_id>/start", tasks.start, name="daemon-task-start"),
    path("tasks/<str:task_id>/complete", tasks.complete, name="daemon-task-complete"),
    path("tasks/<str:task_id>/fail", tasks.fail, name="daemon-task-fail"),
    path("tasks/<str:task_id>/status", tasks.status, name="daemon-task-status"),
]

urlpatterns = [
    path("api/daemon/", include(daemon_urlpatterns)),
    path("api/schema/", schema, name="api-schema"),
]
