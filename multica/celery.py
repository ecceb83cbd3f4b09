"""The Celery app: configuration from Django settings (`CELERY_*`), tasks from each app's
`tasks.py`, and the beat schedule of the two sweeps, driven by SWEEP_INTERVAL_SECONDS."""

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")

logger = logging.getLogger(__name__)

# A sweep of a mass outage (10,000 runtimes, in chunks of 1000) takes seconds; two minutes
# means something is stuck. The soft limit rolls back the chunk in flight (the chunks before it
# stand), the hard limit kills a run that ignored it.
SWEEP_SOFT_TIME_LIMIT_SECONDS = 120
SWEEP_TIME_LIMIT_SECONDS = 150
# Outlives a run killed at the hard limit (which never releases it) only briefly.
SWEEP_LOCK_TIMEOUT_SECONDS = SWEEP_TIME_LIMIT_SECONDS + 10

app = Celery("multica")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule(interval_seconds: int) -> dict:
    """Both sweeps every `interval_seconds`. A tick not started within one interval expires:
    after a worker outage the backlog is dropped, not replayed in a burst."""
    options = {"expires": interval_seconds}
    return {
        "sweep-stale-runtimes": {
            "task": "runtimes.sweep_stale_runtimes",
            "schedule": interval_seconds,
            "options": options,
        },
        "sweep-stale-tasks": {
            "task": "tasks.sweep_stale_tasks",
            "schedule": interval_seconds,
            "options": options,
        },
    }


@app.on_after_configure.connect
def _schedule_sweeps(sender: Celery, **kwargs) -> None:
    # Here rather than at import: reading Django settings while `multica` itself is still
    # being imported (settings are part of the package) would be circular.
    from django.conf import settings

    sender.conf.beat_schedule = beat_schedule(settings.SWEEP_INTERVAL_SECONDS)


def run_sweep(name: str, sweep: Callable[[], dict], log: logging.Logger) -> dict | None:
    """A sweep task's body: runs `sweep` (which returns its counts) unless the previous run of
    `name` still goes, and logs `sweep.done` with the counts, or `sweep.skipped`, on `log`."""
    with single_run(name) as alone:
        if not alone:
            log.info("sweep.skipped", extra={"sweep": name})
            return None
        counts = sweep()
    log.info("sweep.done", extra={"sweep": name, **counts})
    return counts


@contextmanager
def single_run(name: str) -> Iterator[bool]:
    """Yields whether this is the only run of `name` going (a non-blocking Redis lock on
    REDIS_URL, whatever the broker). The guarded updates make overlapping sweeps safe, so when
    Redis cannot be reached the run goes ahead unlocked rather than not at all."""
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    # Named after the database too: deployments (or a test run) sharing one Redis must not skip
    # each other's ticks.
    database = settings.DATABASES["default"]["NAME"]
    lock = client.lock(f"multica:lock:{database}:{name}", timeout=SWEEP_LOCK_TIMEOUT_SECONDS)
    with client:
        try:
            acquired = lock.acquire(blocking=False)
        except redis.RedisError as exc:
            logger.warning("sweep.lock_unavailable", extra={"sweep": name, "error": str(exc)})
            yield True
            return
        try:
            yield acquired
        finally:
            if acquired:
                _release(lock, name)


def _release(lock, name: str) -> None:
    try:
        lock.release()
    except redis.RedisError as exc:
        # Expired or unreachable: the lock times out on its own.
        logger.warning("sweep.lock_release_failed", extra={"sweep": name, "error": str(exc)})
