"""The web process: granian serving the WSGI app (admin and daemon API).

    python -m multica.web [--host 127.0.0.1] [--port 8000]

It listens on loopback unless told otherwise (compose: `--host 0.0.0.0`, on the container's
network): it is meant to be reached only through the proxy, which reads each request's body
whole before passing it on. granian hands a request to a thread before its body has arrived
and has no body-read timeout, so a client sending a body slowly to this process directly
holds a thread for as long as it likes; behind nginx it holds an nginx connection instead,
cut after nginx's `client_body_timeout`. The daemon API checks the token before it reads a
body, so a slow client without a live token is answered at once either way.

`WEB_WORKERS` processes (default 2, one per core), each running the app on up to
`WEB_THREADS` threads (default 4), so a thread runs while others wait on PostgreSQL. granian's
HTTP is Rust: the Python left per request is Django's. gunicorn's threaded worker, which this
replaced, spent as much of its process's Python time on handing connections between its
threads as Django spent on the request (a profile at 400 heartbeats/s). Each thread keeps its
database connection, so the process holds at most WEB_WORKERS x WEB_THREADS of them (8 by
default), which must fit, over every replica and beside the other processes, in
max_connections.
"""

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

# Ten minutes: the threads live on while requests keep coming (see IDLE_THREAD_SECONDS), so a
# kept connection is reused by every request its thread serves instead of forking a
# PostgreSQL backend for each.
CONN_MAX_AGE_SECONDS = "600"
# How long an idle thread lives (granian's default is 30 s), as long as a kept connection. A
# thread that ends takes its database connection with it; its successor opens a new one.
IDLE_THREAD_SECONDS = 600
# How long a kept-alive connection may sit idle (granian's default is 30 s). A daemon beating
# every 15 s keeps its connection; the proxy drops its idle upstream connections sooner (50 s),
# so it never sends a request down one being closed here.
IDLE_CONNECTION_MS = 60_000
# Where the workers keep their metrics (prometheus_client's multiprocess mode, read by
# common.metrics). Not imported from there: a worker forked from a process that had already
# made its metrics would count in memory only.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdecimal() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def server(host: str, port: int, target: str = "multica.wsgi:application") -> Granian:
    """The configured granian server of the WSGI app `target`, not yet serving; bad settings
    stop here."""
    # 2 x 4 sustained as much as 2 x 8 (bench/heartbeats.py), with half the connections.
    workers, threads = positive_int("WEB_WORKERS", 2), positive_int("WEB_THREADS", 4)
    return Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        blocking_threads_idle_timeout=IDLE_THREAD_SECONDS,
        http1_settings=HTTP1Settings(header_read_timeout=IDLE_CONNECTION_MS),
        # A worker that dies is replaced.
        respawn_failed_workers=True,
        websockets=False,  # daphne's (multica.asgi)
    )


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    return parser.parse_args(argv)


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """An empty directory for the workers' metric files: the one PROMETHEUS_MULTIPROC_DIR
    names, emptied (an earlier run's counts would add to this one's), or a temporary one."""
    given = os.environ.get(METRICS_DIR)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield given
    else:
        with tempfile.TemporaryDirectory(prefix="multica-metrics-") as made:
            yield made


def main() -> None:
    args = arguments()
    run(server(args.host, args.port))


def run(web: Granian) -> None:
    """Serves with `web` until stopped."""
    # Read in each worker, which inherits this environment: by the settings, and by
    # prometheus_client, which must see it before its first metric is made.
    os.environ.setdefault("CONN_MAX_AGE", CONN_MAX_AGE_SECONDS)
    with metrics_dir() as path:
        os.environ[METRICS_DIR] = path
        web.serve()


if __name__ == "__main__":
    main()
