"""Overlap guard for the periodic sweeps: a tick is skipped while the previous run of the same
sweep still goes. Correctness never depends on it (the guarded updates make overlapping sweeps
safe); it only keeps a slow sweep from piling up runs behind itself.

A PostgreSQL advisory lock, held by the session of the sweep's own connection: a process that
dies, however it dies, frees it with its connection, so the next tick runs at once (a lock with
a time to live outlives a killed holder by that long). And sweeps need no Redis at all."""

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import Error as DatabaseError

from common.sql import fetch_one

# The first key of the two-key form: this product's own space of advisory locks.
LOCK_SPACE = 0x5EE9


@contextmanager
def single_run(name: str) -> Iterator[bool]:
    """Yields whether this is the only run of `name` going (a non-blocking, session-level
    advisory lock on the current connection; advisory locks are per database, so deployments
    sharing a server do not skip each other's ticks)."""
    key = lock_key(name)
    acquired = fetch_one(
        "SELECT pg_try_advisory_lock(%(space)s, %(key)s) AS acquired", space=LOCK_SPACE, key=key
    ).acquired
    try:
        yield acquired
    finally:
        if acquired:
            _unlock(key)


def lock_key(name: str) -> int:
    """The second key of `name`'s lock (a stable hash: every process computes the same)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _unlock(key: int) -> None:
    try:
        fetch_one(
            "SELECT pg_advisory_unlock(%(space)s, %(key)s) AS released", space=LOCK_SPACE, key=key
        )
    except DatabaseError:
        # The connection is gone, and the lock with it; the sweep's own error is the news.
        pass
