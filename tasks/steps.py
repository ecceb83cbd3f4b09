"""The sweeper's guarded writes to tasks, each inside the caller's transaction: failing the
work of offline runtimes and tasks stuck past their timeout. Each returns the tasks it failed
and announces them after commit; the agents left without work are the caller's to settle."""

from datetime import timedelta
from uuid import UUID

from common.signals import send_on_commit
from common.sql import fetch
from tasks import queries
from tasks.changes import FailedTask
from tasks.signals import tasks_failed

RUNTIME_OFFLINE_ERROR = "runtime went offline"
TIMEOUT_ERROR = "task timed out"


def fail_tasks_of_offline_runtimes(*, runtime_ids: list[UUID]) -> list[FailedTask]:
    """Fails the dispatched/running tasks of those of `runtime_ids` that are offline, with
    `runtime_offline`; tasks others hold locked are left for the next sweep."""
    failed = fetch(
        queries.FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES,
        into=FailedTask,
        runtime_ids=list(runtime_ids),
        error=RUNTIME_OFFLINE_ERROR,
    )
    return announce_failed(failed)


def fail_stuck_tasks(
    *, dispatch_timeout: timedelta, running_timeout: timedelta, limit: int
) -> list[FailedTask]:
    """Fails up to `limit` tasks `dispatched` longer than `dispatch_timeout` or `running`
    longer than `running_timeout` (database clock), with `timeout`."""
    failed = fetch(
        queries.FAIL_STUCK_TASKS,
        into=FailedTask,
        dispatch_timeout=dispatch_timeout,
        running_timeout=running_timeout,
        limit=limit,
        error=TIMEOUT_ERROR,
    )
    return announce_failed(failed)


def announce_failed(failed: list[FailedTask]) -> list[FailedTask]:
    if failed:
        send_on_commit(tasks_failed, sender=FailedTask, tasks=failed)
    return failed
