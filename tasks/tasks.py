import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from multica.celery import SWEEP_SOFT_TIME_LIMIT_SECONDS, SWEEP_TIME_LIMIT_SECONDS, single_run
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
    with single_run("sweep_stale_tasks") as alone:
        if not alone:
            logger.info("sweep.skipped", extra={"sweep": "sweep_stale_tasks"})
            return None
        result = sweep(
            dispatch_timeout=timedelta(seconds=settings.TASK_DISPATCH_TIMEOUT_SECONDS),
            running_timeout=timedelta(seconds=settings.TASK_RUNNING_TIMEOUT_SECONDS),
        )
    counts = {"tasks_failed": len(result.tasks_failed), "agents_idle": len(result.agents_changed)}
    logger.info("sweep.done", extra={"sweep": "sweep_stale_tasks", **counts})
    return counts
