"""Every sweeper write to AgentTask: failing the work of offline runtimes and stuck tasks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from runtimes.queries import fetch_all
from runtimes.signals import send_on_commit
from runtimes.sweeps import CHUNK_SIZE, SweepResult, idle_agents_without_work
from tasks import queries
from tasks.signals import tasks_failed

logger = logging.getLogger(__name__)

RUNTIME_OFFLINE_ERROR = "runtime went offline"
TIMEOUT_ERROR = "task timed out"


@dataclass(frozen=True)
class FailedTask:
    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID
    workspace_id: UUID
    failure_reason: str
    error: str


def fail_tasks_of_offline_runtimes(*, runtime_ids: list[UUID]) -> SweepResult:
    """Fails the dispatched/running tasks of those of `runtime_ids` that are offline
    (`runtime_offline`) and idles agents left without work. Returns what it changed."""
    rows = fetch_all(
        queries.FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES,
        runtime_ids=list(runtime_ids),
        error=RUNTIME_OFFLINE_ERROR,
    )
    return announce_failed(rows)


def sweep_stale_tasks(
    *,
    dispatch_timeout: timedelta,
    running_timeout: timedelta,
    chunk_size: int = CHUNK_SIZE,
) -> SweepResult:
    """Fails tasks `dispatched` longer than `dispatch_timeout` or `running` longer than
    `running_timeout` (database clock) with `timeout`, and idles agents left without work.
    Returns what it changed; each chunk commits, and is announced, on its own."""
    result = SweepResult()
    while True:
        with transaction.atomic():
            rows = fetch_all(
                queries.FAIL_STUCK_TASKS,
                dispatch_timeout=dispatch_timeout,
                running_timeout=running_timeout,
                limit=chunk_size,
                error=TIMEOUT_ERROR,
            )
            result.add(announce_failed(rows))
        if len(rows) < chunk_size:
            break
    if result:
        logger.info(
            "sweep.tasks",
            extra={
                "tasks_failed": len(result.tasks_failed),
                "agents_idle": len(result.agents_changed),
            },
        )
    return result


def announce_failed(rows: list[tuple]) -> SweepResult:
    """Within the caller's transaction: idles the failed tasks' agents and queues the
    announcement of both for after commit."""
    failed = [FailedTask(*row) for row in rows]
    if not failed:
        return SweepResult()
    send_on_commit(tasks_failed, sender=FailedTask, tasks=failed)
    agents = idle_agents_without_work(agent_ids=[task.agent_id for task in failed])
    return SweepResult(tasks_failed=failed, agents_changed=agents)
