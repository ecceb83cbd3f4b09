"""The outbox as tests drive it: the relay's lock held by another session, as a relay running
in another process holds it."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from outbox import relay


@contextmanager
def relay_held_elsewhere() -> Iterator[None]:
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [relay.LOCK_SPACE, relay.LOCK_KEY]
            )
        yield
        other.rollback()
    finally:
        other.close()
