"""Threads on their own database connections: concurrent sweeps, heartbeats and claims, and
transactions held open to race against."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


def in_thread(fn: Callable, *args, **kwargs) -> tuple[threading.Thread, list]:
    """Starts `fn` on its own thread (and so its own database connection, closed at the end);
    the list receives its return value or the exception it raised."""
    out: list = []

    def target():
        try:
            out.append(fn(*args, **kwargs))
        except Exception as exc:  # for the test to assert on or re-raise
            out.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


@contextmanager
def held_open(fn: Callable, *args, **kwargs) -> Iterator[list]:
    """Runs `fn` in a transaction on its own thread and connection, and keeps the transaction,
    with the row locks it took, open until the block ends. Yields the list that receives
    `fn`'s return value (or exception): filled on entry, committed on exit."""
    done, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            result = fn(*args, **kwargs)
            done.set()
            release.wait(10)
        return result

    thread, out = in_thread(hold)
    try:
        assert done.wait(10), f"{getattr(fn, '__name__', fn)} did not finish: {out}"
        yield out
    finally:
        release.set()
        thread.join(10)


def wait_for_lock_wait(timeout: float = 10) -> None:
    """Returns once some other session of this database is waiting on a lock (a row lock held
    by another transaction): the moment a race test wants to let the holder go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("nobody ever waited on the lock")


def together(*fns) -> list:
    """Runs each of `fns` on its own thread, all released at the same instant; returns their
    results."""
    barrier = threading.Barrier(len(fns))
    started = [in_thread(lambda fn=fn: (barrier.wait(), fn())[1]) for fn in fns]
    results = []
    for thread, out in started:
        thread.join(60)
        assert not thread.is_alive()
        (value,) = out
        if isinstance(value, Exception):
            raise value
        results.append(value)
    return results
