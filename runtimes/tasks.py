import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from multica.celery import SWEEP_SOFT_TIME_LIMIT_SECONDS, SWEEP_TIME_LIMIT_SECONDS, run_sweep
from runtimes.sweeps import sweep_stale_runtimes as sweep

logger = logging.getLogger(__name__)


@shared_task(
    name="runtimes.sweep_stale_runtimes",
    ignore_result=True,
    soft_time_limit=SWEEP_SOFT_TIME_LIMIT_SECONDS,
    time_limit=SWEEP_TIME_LIMIT_SECONDS,
)
def sweep_stale_runtimes() -> dict | None:
    """Beat's runtime sweep; skips the tick while the previous one still runs."""
    return run_sweep("sweep_stale_runtimes", _sweep, logger)


def _sweep() -> dict:
    result = sweep(stale_after=timedelta(seconds=settings.RUNTIME_STALE_SECONDS))
    return {
        "runtimes_offline": len(result.runtimes_marked_offline),
        "tasks_failed": len(result.tasks_failed),
        "agents_idle": len(result.agents_changed),
    }
