"""The sweeper's guarded writes to tasks, each inside the caller's transaction: failing the
work of offline runtimes and tasks stuck past their timeout. Each returns the tasks it failed
and announces them after commit; the agents left without work are the caller's to settle."""

from datetime import timedelta
from uuid import UUID

from common.signals import send_on_commit
from common.sql import fetch, fetch_one
from tasks import queries
from tasks.changes import FailedTask
from tasks.signals import tasks_failed

TIMEOUT_ERROR = "task timed out"


def fail_tasks_of_offline_runtimes(
    *, runtime_ids: list[UUID], stale_after: timedelta, grace: timedelta, judge_stale: bool
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
    )
    return announce_failed(failed)


def fail_stuck_tasks(
    *,
    dispatch_timeout: timedelta,
    running_timeout: timedelta,
    limit: int,
    judge_dispatched: bool = True,
    judge_running: bool = True,
) -> list[FailedTask]:
    """Fails up to `limit` tasks `dispatched` longer than `dispatch_timeout` (if
    `judge_dispatched`) or `running` longer than `running_timeout` (if `judge_running`),
    database clock, with `timeout`."""
    failed = fetch(
        queries.FAIL_STUCK_TASKS,
        into=FailedTask,
        dispatch_timeout=dispatch_timeout,
        running_timeout=running_timeout,
        judge_dispatched=judge_dispatched,
        judge_running=judge_running,
        limit=limit,
        error=TIMEOUT_ERROR,
    )
    return announce_failed(failed)


def announce_failed(failed: list[FailedTask]) -> list[FailedTask]:
    if failed:
        send_on_commit(tasks_failed, sender=FailedTask, tasks=failed)
    return failed


def contradicted_count() -> int:
    """How many of the sweeper's task verdicts a daemon's later report contradicted."""
    return fetch_one(queries.CONTRADICTED_COUNT).n
