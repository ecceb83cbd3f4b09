"""What a daemon does to its tasks: claim, start, complete, fail, and ask after them.

Each move is one guarded UPDATE scoped to the caller's workspace (see `queries`): a task in
the wrong state answers Conflict and changes nothing; another workspace's task is NotFound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NoReturn
from uuid import UUID

from django.db import transaction

from runtimes import daemons
from runtimes.daemons import Conflict, NotFound
from runtimes.queries import fetch_all
from runtimes.signals import agents_status_changed, send_on_commit
from runtimes.sweeps import AgentChange, idle_agents_without_work
from tasks import queries
from tasks.sweeps import announce_failed


@dataclass(frozen=True)
class ClaimedTask:
    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID
    priority: int
    status: str


def claim_task(*, workspace_id: UUID, runtime_id: UUID) -> ClaimedTask | None:
    """Dispatches the runtime's queued task of highest priority (then oldest) whose agent has
    fewer active tasks than its limit, and sets an idle agent working. Returns None when there
    is none. Raises NotFound, or Conflict for an offline runtime."""
    with transaction.atomic():
        daemons.lock_for_claim(workspace_id=workspace_id, runtime_id=runtime_id)
        rows = fetch_all(queries.LOCK_AGENTS_WITH_QUEUED_WORK, runtime_id=runtime_id)
        if not rows:
            return None
        rows = fetch_all(
            queries.CLAIM_NEXT_TASK, runtime_id=runtime_id, agent_ids=[row[0] for row in rows]
        )
        if not rows:
            return None
        task = ClaimedTask(*rows[0])
        _set_working(task.agent_id)
    return task


def start_task(*, workspace_id: UUID, task_id: UUID) -> str:
    """dispatched -> running."""
    rows = fetch_all(queries.START_TASK, workspace_id=workspace_id, task_id=task_id)
    return _moved(rows, workspace_id, task_id, "dispatched")


def complete_task(*, workspace_id: UUID, task_id: UUID, result: dict) -> str:
    """running -> completed, keeping `result`; idles the agent if it has nothing else."""
    with transaction.atomic():
        rows = fetch_all(
            queries.COMPLETE_TASK,
            workspace_id=workspace_id,
            task_id=task_id,
            result=json.dumps(result),
        )
        status = _moved(rows, workspace_id, task_id, "running")
        idle_agents_without_work(agent_ids=[rows[0][1]])
    return status


def fail_task(*, workspace_id: UUID, task_id: UUID, error: str) -> str:
    """dispatched | running -> failed with `agent_error`; announced like a sweep's failure."""
    with transaction.atomic():
        rows = fetch_all(queries.FAIL_TASK, workspace_id=workspace_id, task_id=task_id, error=error)
        if not rows:
            _refuse(workspace_id, task_id, "dispatched or running")
        announce_failed(rows)
    return "failed"


def task_status(*, workspace_id: UUID, task_id: UUID) -> str:
    rows = fetch_all(queries.TASK_STATUS, workspace_id=workspace_id, task_id=task_id)
    if not rows:
        raise NotFound("task not found")
    return rows[0][0]


def _moved(rows: list[tuple], workspace_id: UUID, task_id: UUID, expected: str) -> str:
    if not rows:
        _refuse(workspace_id, task_id, expected)
    return rows[0][2]


def _refuse(workspace_id: UUID, task_id: UUID, expected: str) -> NoReturn:
    """The guarded update changed nothing: say whether the task is missing or elsewhere."""
    status = task_status(workspace_id=workspace_id, task_id=task_id)
    raise Conflict(f"task is {status}, not {expected}")


def _set_working(agent_id: UUID) -> None:
    rows = fetch_all(queries.AGENT_STARTS_WORKING, agent_id=agent_id)
    changed = [AgentChange(id=row[0], workspace_id=row[1], status=row[2]) for row in rows]
    if changed:
        send_on_commit(agents_status_changed, sender=AgentChange, agents=changed)
