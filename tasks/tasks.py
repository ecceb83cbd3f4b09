import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from multica.celery import SWEEP_SOFT_TIME_LIMIT_SECONDS, SWEEP_TIME_LIMIT_SECONDS, run_sweep
from tasks.sweeps import sweep_stale_tasks as sweep

logger = logging.getLogger(__name__)


@shared_task(
    name="tasks.sweep_stale_tasks",
    ignore_result=True,
    soft_time_limit=SWEEP_SOFT_TIME_LIMIT_SECONDS,
    time_limit=SWEEP_TIME_LIMIT_SECONDS,
)
def sweep_stale_tasks() -> dict | None:
    """Beat's stuck-task sweep; skips the tick while the previous one still runs."""
    return run_sweep("sweep_stale_tasks", _sweep, logger)


def _sweep() -> dict:
    result = sweep(
        dispatch_timeout=timedelta(seconds=settings.TASK_DISPATCH_TIMEOUT_SECONDS),
        running_timeout=timedelta(seconds=settings.TASK_RUNNING_TIMEOUT_SECONDS),
    )
    return {"tasks_failed": len(result.tasks_failed), "agents_idle": len(result.agents_changed)}
