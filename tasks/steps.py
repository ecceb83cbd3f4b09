"""The sweeper's guarded writes to tasks, each inside the caller's transaction: failing the
work of offline runtimes, tasks stuck past their timeouts or orphaned by their daemon, and tasks
queued too long; queuing the next attempt of what the sweeper failed. Each returns the tasks it
failed and announces them in the transaction; the agents left without work are the caller's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from common.errors import Conflict, NotFound
from common.signals import send_in_transaction
from common.sql import execute, fetch, fetch_one
from tasks import queries
from tasks.changes import FailedTask, QueuedTask
from tasks.signals import tasks_failed, tasks_queued


@dataclass(frozen=True)
class StuckRules:
    """When a live task is stuck (see queries.FAIL_STUCK_TASKS)."""

    dispatch_timeout: timedelta
    running_timeout: timedelta
    max_running: timedelta
    orphan_grace: timedelta
    judge_dispatched: bool = True
    judge_running: bool = True


def fail_tasks_of_offline_runtimes(
    *,
    runtime_ids: list[UUID],
    stale_after: timedelta,
    grace: timedelta,
    judge_stale: bool,
    max_attempts: int,
) -> list[FailedTask]:
    """Fails, with `runtime_offline`, the dispatched/running tasks of those of `runtime_ids`
    that are offline and whose work is due: deregistered ones, and, if `judge_stale`, those
    offline longer than `grace`. Tasks others hold locked are left for the next sweep."""
    failed = fetch(
        queries.FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES,
        into=FailedTask,
        runtime_ids=list(runtime_ids),
        stale_after=stale_after,
        grace=grace,
        judge_stale=judge_stale,
        max_attempts=max_attempts,
    )
    return retry_and_announce(failed, max_attempts=max_attempts)


def fail_stuck_tasks(*, rules: StuckRules, limit: int, max_attempts: int) -> list[FailedTask]:
    """Fails up to `limit` stuck tasks: past a timeout (`timeout`; a running task its daemon
    vouches for only past the maximum running time), or no longer listed by their daemon for
    the orphan grace (`orphaned`). Database clock."""
    failed = fetch(
        queries.FAIL_STUCK_TASKS,
        into=FailedTask,
        dispatch_timeout=rules.dispatch_timeout,
        running_timeout=rules.running_timeout,
        max_running=rules.max_running,
        orphan_grace=rules.orphan_grace,
        judge_dispatched=rules.judge_dispatched,
        judge_running=rules.judge_running,
        limit=limit,
        max_attempts=max_attempts,
    )
    return retry_and_announce(failed, max_attempts=max_attempts)


def expire_queued_tasks(*, queued_ttl: timedelta, limit: int) -> list[FailedTask]:
    """Fails up to `limit` tasks queued longer than `queued_ttl` (`queued_expired`); never
    retried."""
    failed = fetch(queries.EXPIRE_QUEUED_TASKS, into=FailedTask, queued_ttl=queued_ttl, limit=limit)
    return announce_failed(failed)


def retry_and_announce(failed: list[FailedTask], *, max_attempts: int) -> list[FailedTask]:
    """Queues the next attempt of each of `failed` with budget left (its own max_attempts, or
    `max_attempts`), in the same transaction; announces the failures, each with its retry.
    Only those the failing statement found `retry_due` are offered to the retry statement."""
    due = [t.id for t in failed if t.retry_due]
    if due:
        retries = fetch(queries.RETRY_FAILED, task_ids=due, max_attempts=max_attempts)
        retry_of = {row.retry_of_id: row.id for row in retries}
        failed = [
            replace(t, retry_task_id=retry_of.get(t.id)) if t.retry_due else t for t in failed
        ]
    return announce_failed(failed)


def retry_by_member(*, workspace_id: UUID, task_id: UUID) -> QueuedTask:
    """Queues the next attempt of the workspace's failed task, once however many ask at once,
    and announces it. NotFound outside the workspace; Conflict if it is not failed, was retried
    already, or its runtime is gone."""
    with transaction.atomic():
        queued = fetch(
            queries.RETRY_BY_MEMBER, into=QueuedTask, workspace_id=workspace_id, task_id=task_id
        )
        if queued:
            send_in_transaction(tasks_queued, sender=QueuedTask, tasks=queued)
            return queued[0]
    task = fetch_one(queries.RETRY_STATE, workspace_id=workspace_id, task_id=task_id)
    if task is None:
        raise NotFound("task not found")
    if task.status != "failed":
        raise Conflict(f"task is {task.status}, not failed")
    if task.retry_id is not None:
        raise Conflict(f"task was retried already, as task {task.retry_id}")
    raise Conflict("task's runtime is gone: nothing to queue it on")


def announce_failed(failed: list[FailedTask]) -> list[FailedTask]:
    if failed:
        send_in_transaction(tasks_failed, sender=FailedTask, tasks=failed)
    return failed


def detach_runtime_history(*, runtime_ids: list[UUID]) -> None:
    """Before the runtimes are deleted: their tasks' history keeps all but the runtime."""
    execute(queries.DETACH_RUNTIME_HISTORY, runtime_ids=runtime_ids)


def contradicted_count() -> int:
    """How many of the sweeper's task verdicts a daemon's later report contradicted."""
    return fetch_one(queries.CONTRADICTED_COUNT).n
