"""The daemon API's task moves, each with what it does to the agent, in one transaction: a
claim puts its agent to work, a task that ends leaves its agent idle when it has nothing else.
A move the task's state refuses is answered from `lifecycle.refuse`, after the transaction, so
that a report contradicting the sweeper's verdict is kept even though the move is refused."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from runtimes import agents, daemons
from tasks import lifecycle
from tasks.changes import ClaimedTask


def claim(*, workspace_id: UUID, runtime_id: UUID) -> ClaimedTask | None:
    """Dispatches the runtime's next queued task (see `lifecycle.claim_next`) and sets an idle
    agent working. Raises NotFound, or Conflict for an offline runtime."""
    with transaction.atomic():
        daemons.lock_for_claim(workspace_id=workspace_id, runtime_id=runtime_id)
        task = lifecycle.claim_next(runtime_id=runtime_id)
        if task is not None:
            agents.set_working(agent_id=task.agent_id)
    return task


def start(*, workspace_id: UUID, task_id: UUID) -> str:
    """dispatched -> running."""
    moved = lifecycle.start_task(workspace_id=workspace_id, task_id=task_id)
    if moved is None:
        lifecycle.refuse(workspace_id=workspace_id, task_id=task_id, expected="dispatched")
    return moved.status


def complete(*, workspace_id: UUID, task_id: UUID, result: dict) -> str:
    """running -> completed; idles the agent if it has nothing else."""
    with transaction.atomic():
        moved = lifecycle.complete_task(workspace_id=workspace_id, task_id=task_id, result=result)
        if moved is not None:
            agents.idle_agents_without_work(agent_ids=[moved.agent_id])
    if moved is None:
        report = {"status": "completed", "result": result}
        lifecycle.refuse(
            workspace_id=workspace_id, task_id=task_id, expected="running", report=report
        )
    return moved.status


def fail(*, workspace_id: UUID, task_id: UUID, error: str) -> str:
    """dispatched | running -> failed (`agent_error`); idles the agent if it has nothing else."""
    with transaction.atomic():
        failed = lifecycle.fail_task(workspace_id=workspace_id, task_id=task_id, error=error)
        if failed is not None:
            agents.idle_agents_without_work(agent_ids=[failed.agent_id])
    if failed is None:
        lifecycle.refuse(
            workspace_id=workspace_id,
            task_id=task_id,
            expected="dispatched or running",
            report={"status": "failed", "error": error},
        )
    return "failed"
