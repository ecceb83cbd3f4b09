"""The read API for frontends (session auth, members only; README "Read API") and the
board's two actions. Each answer carries the workspace's event `seq`: a client loads the
snapshot, then opens the socket with `?after=<seq>` and misses nothing."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from board.http import (
    BadRequest,
    choices,
    decode_cursor,
    encode_cursor,
    limit,
    member_endpoint,
    parse_uuid,
    time_and_id,
)
from outbox.replay import head_seq
from runtimes import members
from runtimes import selectors as runtime_reads
from sweeper.config import Rules
from sweeper.outlook import outlook
from tasks import selectors as task_reads
from tasks import steps
from tasks.models import AgentTask

STATUSES = list(AgentTask.Status.values)
FAILURE_REASONS = [r for r in AgentTask.FailureReason.values if r]


@member_endpoint("GET")
def runtimes(request: HttpRequest, workspace_id) -> JsonResponse:
    seq = head_seq(workspace_id)  # before the rows: replay from it repeats, never skips
    after = decode_cursor(request, 2)
    size = limit(request)
    rows = runtime_reads.runtimes_page(
        workspace_id=workspace_id, limit=size, after=tuple(after) if after else None
    )
    last = rows[-1] if len(rows) == size else None
    return JsonResponse(
        {
            "seq": seq,
            "now": runtime_reads.db_now(),
            "sweeper": outlook(Rules.from_settings()).as_dict(),
            "runtimes": [runtime_json(row) for row in rows],
            "next_cursor": encode_cursor(last.daemon_id, last.provider) if last else None,
        }
    )


@member_endpoint("GET")
def tasks(request: HttpRequest, workspace_id) -> JsonResponse:
    seq = head_seq(workspace_id)
    statuses = choices(request, "status", STATUSES)
    reasons = choices(request, "failure_reason", FAILURE_REASONS)
    if len(reasons) > 1:
        raise BadRequest("failure_reason takes one reason")
    after = decode_cursor(request, 2)
    size = limit(request)
    rows = task_reads.tasks_page(
        workspace_id=workspace_id,
        statuses=statuses,
        failure_reason=reasons[0] if reasons else "",
        limit=size,
        after=time_and_id(after) if after else None,
    )
    last = rows[-1] if len(rows) == size and rows[-1].sort_at else None
    return JsonResponse(
        {
            "seq": seq,
            "now": runtime_reads.db_now(),
            "tasks": [task_json(row) for row in rows],
            "next_cursor": encode_cursor(last.sort_at.isoformat(), str(last.id)) if last else None,
        }
    )


@member_endpoint("POST")
def retry(request: HttpRequest, workspace_id, task_id: str) -> JsonResponse:
    queued = steps.retry_by_member(workspace_id=workspace_id, task_id=parse_uuid(task_id, "task"))
    return JsonResponse({"task_id": queued.id, "retry_of": queued.retry_of_id,
                         "attempt": queued.attempt}, status=201)  # fmt: skip


@member_endpoint("POST")
def dismiss(request: HttpRequest, workspace_id, runtime_id: str) -> JsonResponse:
    changed = members.dismiss(
        workspace_id=workspace_id, runtime_id=parse_uuid(runtime_id, "runtime")
    )
    return JsonResponse({"runtime_id": changed.id, "dismissed": True})


def runtime_json(row: runtime_reads.RuntimeRow) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "provider": row.provider,
        "daemon_id": row.daemon_id,
        "device": row.device_name,
        "status": row.status,
        "last_seen_at": row.last_seen_at,
        "offline_at": row.offline_at,
        "agents": row.agents,
        "active_tasks": row.active_tasks,
    }


def task_json(row: task_reads.TaskRow) -> dict:
    return {
        "id": row.id,
        "status": row.status,
        "failure_reason": row.failure_reason,
        "error": row.error,
        "issue_id": row.issue_id,
        "priority": row.priority,
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "retry_of": row.retry_of_id,
        "retry": row.retry_id,
        "created_at": row.created_at,
        "dispatched_at": row.dispatched_at,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "agent": {"id": row.agent_id, "name": row.agent_name},
        "runtime": {"id": row.runtime_id, "name": row.runtime_name} if row.runtime_id else None,
    }
