"""The daemon-facing runtime endpoints under /api/daemon/: register, heartbeat, deregister."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import JsonResponse

from common import metrics
from common.errors import NotFound
from daemon_api.http import (
    BadRequest,
    daemon_endpoint,
    json_body,
    list_field,
    parse_uuid,
    text_field,
    uuid_field,
)
from runtimes import daemons
from runtimes.daemons import RuntimeSpec
from sweeper import state

# One daemon runs a handful of agent backends; a deregister may cover a whole fleet's worth.
MAX_RUNTIMES_PER_REGISTER = 50
MAX_RUNTIMES_PER_DEREGISTER = 1000
# A runtime's agents run at most a handful of tasks each; a thousand is a generous ceiling.
MAX_RUNNING_TASKS = 1000


@daemon_endpoint("POST")
def register(request, caller):
    body = json_body(request)
    requested_workspace = uuid_field(body, "workspace_id")
    daemon_id = text_field(body, "daemon_id", max_length=200)
    device_name = text_field(body, "device_name", max_length=200, allow_empty=True)
    specs = [
        _runtime_spec(item)
        for item in list_field(body, "runtimes", max_items=MAX_RUNTIMES_PER_REGISTER)
    ]
    if len({spec.provider for spec in specs}) != len(specs):
        raise BadRequest("runtimes: one entry per provider")
    if requested_workspace != caller.workspace_id:
        raise NotFound("workspace not found")
    registered = daemons.register(
        workspace_id=caller.workspace_id,
        daemon_id=daemon_id,
        device_name=device_name,
        runtimes=specs,
        max_runtimes=settings.WORKSPACE_MAX_RUNTIMES,
    )
    return JsonResponse(
        {
            "runtimes": [
                {"id": r.id, "name": r.name, "provider": r.provider, "status": r.status}
                for r in registered
            ]
        }
    )


def _runtime_spec(item) -> RuntimeSpec:
    if not isinstance(item, dict):
        raise BadRequest("runtimes: each item must be an object")
    return RuntimeSpec(
        name=text_field(item, "name", max_length=200),
        provider=text_field(item, "provider", max_length=100),
        version=text_field(item, "version", max_length=100, allow_empty=True),
    )


# The heartbeat's one statement checks the token again itself (runtimes.queries.HEARTBEAT).
@daemon_endpoint("POST", token_rechecked=True, answered=metrics.count_heartbeat)
def heartbeat(request, caller):
    body = json_body(request)
    runtime_id = uuid_field(body, "runtime_id")
    leases = None
    if "running_task_ids" in body:  # optional: a daemon that does not send it is judged as before
        items = list_field(body, "running_task_ids", max_items=MAX_RUNNING_TASKS, allow_empty=True)
        leases = sorted({parse_uuid(item, "running_task_ids") for item in items})
    beat = daemons.heartbeat(
        token_hash=caller.token_hash,
        runtime_id=runtime_id,
        reconnect_grace=timedelta(seconds=settings.RUNTIME_RECONNECT_GRACE_SECONDS),
        leases=leases,
    )
    if beat.contradicted:
        state.count_contradicted_runtime()
    return JsonResponse({"id": runtime_id, "status": "online"})


@daemon_endpoint("POST")
def deregister(request, caller):
    items = list_field(json_body(request), "runtime_ids", max_items=MAX_RUNTIMES_PER_DEREGISTER)
    runtime_ids = [parse_uuid(item, "runtime_ids") for item in items]
    daemons.deregister(workspace_id=caller.workspace_id, runtime_ids=runtime_ids)
    return JsonResponse({"runtimes": [{"id": i, "status": "offline"} for i in runtime_ids]})
