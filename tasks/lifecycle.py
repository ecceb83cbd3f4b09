"""What a daemon does to its tasks: claim, start, complete, fail, and ask after them.

Each move is one guarded UPDATE scoped to the caller's workspace (see `queries`): a task in
the wrong state answers Conflict and changes nothing; another workspace's task is NotFound.
The agents these moves put to work or leave idle are the daemon API's to settle.
"""

from __future__ import annotations

import json
from typing import NoReturn
from uuid import UUID

from common.errors import Conflict, NotFound
from common.sql import execute, fetch, fetch_one
from tasks import queries
from tasks.changes import ClaimedTask, FailedTask, MovedTask
from tasks.steps import announce_failed


def claim_next(*, runtime_id: UUID) -> ClaimedTask | None:
    """Within the caller's transaction, which holds the runtime: dispatches its queued task of
    highest priority (then oldest) whose agent has fewer active tasks than its limit, or
    returns None."""
    agents = fetch(queries.LOCK_AGENTS_WITH_QUEUED_WORK, runtime_id=runtime_id)
    if not agents:
        return None
    return fetch_one(
        queries.CLAIM_NEXT_TASK,
        into=ClaimedTask,
        runtime_id=runtime_id,
        agent_ids=[agent.id for agent in agents],
    )


def start_task(*, workspace_id: UUID, task_id: UUID) -> MovedTask | None:
    """dispatched -> running; None if the task is not dispatched (see `refuse`)."""
    return fetch_one(queries.START_TASK, into=MovedTask, workspace_id=workspace_id, task_id=task_id)


def complete_task(*, workspace_id: UUID, task_id: UUID, result: dict) -> MovedTask | None:
    """running -> completed, keeping `result`; None if the task is not running."""
    return fetch_one(
        queries.COMPLETE_TASK,
        into=MovedTask,
        workspace_id=workspace_id,
        task_id=task_id,
        result=json.dumps(result),
    )


def fail_task(*, workspace_id: UUID, task_id: UUID, error: str) -> FailedTask | None:
    """dispatched | running -> failed with `agent_error`, announced like a sweep's failure;
    None if the task is in neither state."""
    failed = fetch(
        queries.FAIL_TASK, into=FailedTask, workspace_id=workspace_id, task_id=task_id, error=error
    )
    return announce_failed(failed)[0] if failed else None


def refuse(
    *, workspace_id: UUID, task_id: UUID, expected: str, report: dict | None = None
) -> NoReturn:
    """The guarded move changed nothing: raises NotFound for a task missing from the
    workspace, Conflict otherwise. A daemon's `report` (what it sent) on a task the sweeper
    already failed is kept on the task first, as the verdict it contradicts; the task stays
    failed and the daemon must stop."""
    if report is not None:
        execute(
            queries.RECORD_CONTRADICTION,
            workspace_id=workspace_id,
            task_id=task_id,
            report=json.dumps(report),
        )
    status = task_status(workspace_id=workspace_id, task_id=task_id)
    raise Conflict(f"task is {status}, not {expected}")


def task_status(*, workspace_id: UUID, task_id: UUID) -> str:
    task = fetch_one(queries.TASK_STATUS, workspace_id=workspace_id, task_id=task_id)
    if task is None:
        raise NotFound("task not found")
    return task.status
