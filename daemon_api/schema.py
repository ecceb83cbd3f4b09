"""The OpenAPI 3 description of the daemon-facing API, served at /api/schema/. Written by hand:
eight endpoints do not justify a framework, and the fuzzer in the tests keeps it honest."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from daemon_api.http import MAX_BODY_BYTES

UUID = {"type": "string", "format": "uuid"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def _text(max_length: int, min_length: int = 1) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _object(required: list[str], **properties) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _refusals(*statuses: int) -> dict:
    texts = {
        400: "Malformed JSON, a missing field or a wrong type",
        401: "Missing, invalid, expired or revoked token",
        404: "No such runtime or task in the token's workspace",
        409: "The task or runtime is in the wrong state for this move",
        413: f"Body larger than {MAX_BODY_BYTES} bytes",
    }
    return {str(s): {"description": texts[s], **_json(ERROR)} for s in (401, *statuses)}


def _operation(summary: str, ok: dict, request: dict | None, *statuses: int) -> dict:
    operation = {
        "summary": summary,
        "responses": {"200": {"description": "Done", **_json(ok)}, **_refusals(*statuses)},
    }
    if request is not None:
        operation["requestBody"] = {"required": True, **_json(request)}
    return operation


RUNTIME = _object(
    ["id", "name", "provider", "status"],
    id=UUID,
    name={"type": "string"},
    provider={"type": "string"},
    status={"type": "string", "enum": ["online", "offline"]},
)
TASK = _object(
    ["id", "agent_id", "issue_id", "runtime_id", "priority", "status"],
    id=UUID,
    agent_id=UUID,
    issue_id=UUID,
    runtime_id=UUID,
    priority={"type": "integer"},
    status={"type": "string", "enum": ["dispatched"]},
)
TASK_STATE = _object(["id", "status"], id=UUID, status={"type": "string"})
RUNTIME_SPEC = _object(
    ["name", "provider", "version"],
    name=_text(200),
    provider=_text(100),
    version=_text(100, min_length=0),
)
REGISTER = _object(
    ["workspace_id", "daemon_id", "device_name", "runtimes"],
    workspace_id=UUID,
    daemon_id=_text(200),
    device_name=_text(200, min_length=0),
    runtimes={"type": "array", "minItems": 1, "maxItems": 50, "items": RUNTIME_SPEC},
)


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": UUID}


def _task_path(summary: str, ok: dict, request: dict | None, *statuses: int) -> dict:
    return {
        "parameters": [_path_id("task_id")],
        "post": _operation(summary, ok, request, 400, 404, 409, 413, *statuses),
    }


SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "multica daemon API", "version": "1"},
    "components": {"securitySchemes": {"daemonToken": {"type": "http", "scheme": "bearer"}}},
    "security": [{"daemonToken": []}],
    "paths": {
        "/api/daemon/register": {
            "post": _operation(
                "Register a daemon's runtimes (one per provider), online now",
                _object(["runtimes"], runtimes={"type": "array", "items": RUNTIME}),
                REGISTER,
                400,
                404,
                409,  # the workspace's quota of runtimes
                413,
            )
        },
        "/api/daemon/heartbeat": {
            "post": _operation(
                "Keep a runtime online; 404 means register again. With running_task_ids, the"
                " tasks the daemon runs now: listed ones are stopped only after"
                " TASK_MAX_RUNNING_SECONDS, a live task of the runtime no longer listed fails"
                " (orphaned) after TASK_ORPHAN_GRACE_SECONDS",
                _object(["id", "status"], id=UUID, status={"type": "string"}),
                _object(
                    ["runtime_id"],
                    runtime_id=UUID,
                    running_task_ids={"type": "array", "maxItems": 1000, "items": UUID},
                ),
                400,
                404,
                413,
            )
        },
        "/api/daemon/deregister": {
            "post": _operation(
                "Set runtimes offline; one unknown id rejects the whole request",
                _object(["runtimes"], runtimes={"type": "array", "items": TASK_STATE}),
                _object(
                    ["runtime_ids"],
                    runtime_ids={"type": "array", "minItems": 1, "maxItems": 1000, "items": UUID},
                ),
                400,
                404,
                413,
            )
        },
        "/api/daemon/runtimes/{runtime_id}/tasks/claim": {
            "parameters": [_path_id("runtime_id")],
            "post": _operation(
                "Dispatch the runtime's next queued task, or null",
                _object(["task"], task={**TASK, "nullable": True}),
                None,
                404,
                409,
            ),
        },
        "/api/daemon/tasks/{task_id}/start": _task_path("dispatched -> running", TASK_STATE, None),
        "/api/daemon/tasks/{task_id}/complete": _task_path(
            "running -> completed",
            TASK_STATE,
            _object(["result"], result={"type": "object"}),
        ),
        "/api/daemon/tasks/{task_id}/fail": _task_path(
            "dispatched | running -> failed (agent_error)",
            TASK_STATE,
            _object(["error"], error=_text(10_000)),
        ),
        "/api/daemon/tasks/{task_id}/status": {
            "parameters": [_path_id("task_id")],
            "get": _operation(
                "The task's status, so a daemon learns the sweeper failed it",
                _object(["status"], status={"type": "string"}),
                None,
                404,
            ),
        },
    },
}


@require_GET
def schema(request):
    return JsonResponse(SCHEMA)
