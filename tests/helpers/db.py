"""The test database as the tests see it: its clock, and its URL for a subprocess."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import quote

from django.db import connection, connections
from django.db.models.functions import Now

from sweeper.locks import LOCK_SPACE, lock_key


def seconds_ago(seconds: float):
    """An expression for the database's now() minus `seconds`: rows are aged on its clock."""
    return Now() - timedelta(seconds=seconds)


def db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database), for a
    subprocess to use as its DATABASE_URL."""
    db = connection.settings_dict
    user = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        user += ":" + quote(db["PASSWORD"], safe="")
    host, name = db["HOST"], db["NAME"]
    if host.startswith("/"):  # a socket directory, as the embedded server uses
        return f"postgres://{user}@/{quote(host, safe='')}/{name}"
    return f"postgres://{user}@{host}:{db['PORT'] or 5432}/{name}"


@contextmanager
def sweep_lock_held_elsewhere(name: str) -> Iterator[None]:
    """Holds sweep `name`'s advisory lock from another session, as a sweep still running in
    another process would (a session holding it itself would take it again: they nest)."""
    other = connections.create_connection("default")
    key = [LOCK_SPACE, lock_key(name)]
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        yield
        # Released before the session closes: a closing session lets go a moment later.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
    finally:
        other.close()
