"""The Celery tasks beat sends every SWEEP_INTERVAL_SECONDS. Their names are the platform's
(the beat schedule and other services send them by name), older than this module's place."""

import logging
from collections.abc import Callable

from celery import shared_task

from sweeper import locks, sweeps
from sweeper.config import Rules
from sweeper.results import SweepResult

logger = logging.getLogger(__name__)

# A sweep of a mass outage (10,000 runtimes, in chunks of 1000) takes seconds; two minutes
# means something is stuck. The soft limit rolls back the chunk in flight (the chunks before it
# stand), the hard limit kills a run that ignored it.
SWEEP_SOFT_TIME_LIMIT_SECONDS = 120
SWEEP_TIME_LIMIT_SECONDS = 150

SWEEP_TASK = {
    "ignore_result": True,
    "soft_time_limit": SWEEP_SOFT_TIME_LIMIT_SECONDS,
    "time_limit": SWEEP_TIME_LIMIT_SECONDS,
}


@shared_task(name="runtimes.sweep_stale_runtimes", **SWEEP_TASK)
def sweep_stale_runtimes() -> dict | None:
    """Beat's runtime sweep; skips the tick while the previous one still runs."""
    rules = Rules.from_settings()
    return run_sweep("sweep_stale_runtimes", lambda: sweeps.sweep_stale_runtimes(rules=rules))


@shared_task(name="tasks.sweep_stale_tasks", **SWEEP_TASK)
def sweep_stale_tasks() -> dict | None:
    """Beat's stuck-task sweep; skips the tick while the previous one still runs."""
    rules = Rules.from_settings()
    return run_sweep("sweep_stale_tasks", lambda: sweeps.sweep_stale_tasks(rules=rules))


@shared_task(name="runtimes.collect_offline_runtimes", **SWEEP_TASK)
def collect_offline_runtimes() -> int | None:
    """Beat's collection of long-offline runtimes; skips the tick while the previous one runs."""
    with locks.single_run("collect_offline_runtimes") as alone:
        if not alone:
            logger.info("gc.skipped")
            return None
        collected = sweeps.collect_offline_runtimes(rules=Rules.from_settings())
    logger.info("gc.done", extra={"runtimes_collected": len(collected)})
    return len(collected)


def run_sweep(name: str, sweep: Callable[[], SweepResult]) -> dict | None:
    """Runs `sweep` unless the previous run of `name` still goes; logs `sweep.done` with its
    counts, or `sweep.skipped`, and returns the counts (None when skipped)."""
    with locks.single_run(name) as alone:
        if not alone:
            logger.info("sweep.skipped", extra={"sweep": name})
            return None
        counts = sweep().counts()
    logger.info("sweep.done", extra={"sweep": name, **counts})
    return counts
