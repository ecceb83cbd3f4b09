"""multica.db: a kept connection is checked before each request without a query of its own,
and one the server has closed is found out and replaced."""

import time

import pytest
from django.db import connection, connections


def last_query_of(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


@pytest.fixture
def kept():
    """A second connection to the test database, as a web thread keeps one."""
    kept = connections.create_connection("default")
    kept.ensure_connection()
    yield kept
    kept.close()


@pytest.mark.django_db(transaction=True)
def test_a_live_connection_passes_the_check_without_sending_a_query(kept):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'the last query'")

    assert kept.is_usable()
    assert last_query_of(kept.connection.get_backend_pid()) == "SELECT 'the last query'"


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_fails_the_check_and_is_replaced(kept):
    pid = kept.connection.get_backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while kept.is_usable():  # the server says goodbye a moment after it is told to
        assert time.monotonic() < deadline, "a terminated connection still looks usable"
        time.sleep(0.05)

    kept.health_check_done = False  # as at the start of a request
    with kept.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
