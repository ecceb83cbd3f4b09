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
from common.sql import fetch, fetch_one
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


def start_task(*, workspace_id: UUID, task_id: UUID) -> MovedTask:
    """dispatched -> running."""
    moved = fetch_one(
        queries.START_TASK, into=MovedTask, workspace_id=workspace_id, task_id=task_id
    )
    return moved or _refuse(workspace_id, task_id, "dispatched")


def complete_task(*, workspace_id: UUID, task_id: UUID, result: dict) -> MovedTask:
    """running -> completed, keeping `result`."""
    moved = fetch_one(
        queries.COMPLETE_TASK,
        into=MovedTask,
        workspace_id=workspace_id,
        task_id=task_id,
        result=json.dumps(result),
    )
    return moved or _refuse(workspace_id, task_id, "running")


def fail_task(*, workspace_id: UUID, task_id: UUID, error: str) -> FailedTask:
    """dispatched | running -> failed with `agent_error`; announced like a sweep's failure."""
    failed = fetch(
        queries.FAIL_TASK, into=FailedTask, workspace_id=workspace_id, task_id=task_id, error=error
    )
    if not failed:
        _refuse(workspace_id, task_id, "dispatched or running")
    return announce_failed(failed)[0]


def task_status(*, workspace_id: UUID, task_id: UUID) -> str:
    task = fetch_one(queries.TASK_STATUS, workspace_id=workspace_id, task_id=task_id)
    if task is None:
        raise NotFound("task not found")
    return task.status


def _refuse(workspace_id: UUID, task_id: UUID, expected: str) -> NoReturn:
    """The guarded update changed nothing: say whether the task is missing or elsewhere."""
    status = task_status(workspace_id=workspace_id, task_id=task_id)
    raise Conflict(f"task is {status}, not {expected}")
