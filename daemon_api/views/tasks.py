"""The daemon-facing task endpoints under /api/daemon/: claim, start, complete, fail, status."""

from __future__ import annotations

from dataclasses import asdict

from django.http import JsonResponse

from daemon_api import work
from daemon_api.http import BadRequest, daemon_endpoint, json_body, path_uuid, text_field
from tasks import lifecycle

# A daemon's error is a message and perhaps a traceback, not a log file.
MAX_ERROR_LENGTH = 10_000


@daemon_endpoint("POST")
def claim(request, caller, runtime_id):
    task = work.claim(workspace_id=caller.workspace_id, runtime_id=path_uuid(runtime_id, "runtime"))
    return JsonResponse({"task": asdict(task) if task else None})


@daemon_endpoint("POST")
def start(request, caller, task_id):
    task_id = path_uuid(task_id, "task")
    status = work.start(workspace_id=caller.workspace_id, task_id=task_id)
    return JsonResponse({"id": task_id, "status": status})


@daemon_endpoint("POST")
def complete(request, caller, task_id):
    task_id = path_uuid(task_id, "task")
    result = json_body(request).get("result")
    if not isinstance(result, dict):
        raise BadRequest("result: required object")
    status = work.complete(workspace_id=caller.workspace_id, task_id=task_id, result=result)
    return JsonResponse({"id": task_id, "status": status})


@daemon_endpoint("POST")
def fail(request, caller, task_id):
    task_id = path_uuid(task_id, "task")
    error = text_field(json_body(request), "error", max_length=MAX_ERROR_LENGTH)
    status = work.fail(workspace_id=caller.workspace_id, task_id=task_id, error=error)
    return JsonResponse({"id": task_id, "status": status})


@daemon_endpoint("GET")
def status(request, caller, task_id):
    task_id = path_uuid(task_id, "task")
    return JsonResponse(
        {"status": lifecycle.task_status(workspace_id=caller.workspace_id, task_id=task_id)}
    )
