"""Overlap guard for the periodic sweeps: a tick is skipped while the previous run of the same
sweep still goes. Correctness never depends on it (the guarded updates make overlapping sweeps
safe); it only keeps a slow sweep from piling up runs behind itself."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


@contextmanager
def single_run(name: str, *, timeout: int) -> Iterator[bool]:
    """Yields whether this is the only run of `name` going (a non-blocking Redis lock on
    REDIS_URL, whatever the broker, expiring after `timeout` seconds). When Redis cannot be
    reached the run goes ahead unlocked rather than not at all."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    # Named after the database too: deployments (or a test run) sharing one Redis must not skip
    # each other's ticks.
    database = settings.DATABASES["default"]["NAME"]
    lock = client.lock(f"multica:lock:{database}:{name}", timeout=timeout)
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
