"""Whether this process can serve: PostgreSQL and Redis each answer within a timeout.

Each check runs on a fresh connection of its own, not the request's: a kept connection that
is broken must not make the probe lie, and a probe must not leave connections behind. A check
that overruns is abandoned, not waited for: the answer comes within the timeout whatever the
server does (an abandoned check ends by itself at its driver's own timeouts)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import psycopg2
import redis
from django.conf import settings
from django.db import connection

TIMEOUT_SECONDS = 1.0
# The drivers' own timeouts only end an abandoned check: the wait for it is the bound. (libpq
# would wait at least 2 s to connect whatever it is told.)
DRIVER_TIMEOUT_SECONDS = 2

_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def postgres() -> None:
    params = {**connection.get_connection_params(), "connect_timeout": DRIVER_TIMEOUT_SECONDS}
    params["options"] = f"-c statement_timeout={DRIVER_TIMEOUT_SECONDS * 1000}"
    params.pop("cursor_factory", None)
    conn = psycopg2.connect(**params)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        conn.close()


def redis_ping() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=DRIVER_TIMEOUT_SECONDS,
        socket_connect_timeout=DRIVER_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


CHECKS = {"postgres": postgres, "redis": redis_ping}


def failures(timeout: float = TIMEOUT_SECONDS) -> dict[str, str]:
    """What does not answer, with why: empty when everything does. Checks run at once, so
    the whole takes at most `timeout`."""
    deadline = time.monotonic() + timeout
    running = {name: _checks.submit(check) for name, check in CHECKS.items()}
    failed = {}
    for name, future in running.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            failed[name] = f"no answer within {timeout:g} s"
        except Exception as exc:  # any failure to answer is the answer
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            failed[name] = lines[0]
    return failed
