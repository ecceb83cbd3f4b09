"""The product's processes as commands: how production runs each one (docker-compose.yml and
README say the same, a test checks), and how one machine runs them (`make run`, the tests and
the benchmarks), on loopback, with their programs from this interpreter's environment."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

PRODUCTION = {
    "migrate": "python manage.py migrate --noinput",
    # All of the container's addresses: compose's network, where only the proxy reaches it.
    "web": "python -m multica.web --host 0.0.0.0",
    # Verbosity 0: no access log of daphne's own, which prints each URL whole, query string
    # and all (a `?token=` too); the app's log lines show paths only.
    "ws": "daphne -v 0 -b 0.0.0.0 -p 8001 multica.asgi:application",
    "worker": "celery -A multica worker --loglevel=INFO",
    "beat": "celery -A multica beat --loglevel=INFO",
}

LOCAL = {
    "web": ["python", "-m", "multica.web", "--port", "{port}"],  # on loopback, its default
    # daphne on a socket bound by the caller and handed over as file descriptor {fd}, so that
    # no other process can take its port between a probe and the bind.
    "ws": ["daphne", "-v", "0", "--fd", "{fd}", "multica.asgi:application"],
    # Threads, not prefork: two sweeps need no more, and a stop leaves no orphaned children.
    # No mingle or gossip: there are no other workers to hear from.
    "worker": [*shlex.split(PRODUCTION["worker"]), "--pool", "threads", "--concurrency", "2",
               "--without-mingle", "--without-gossip"],
    "beat": [*shlex.split(PRODUCTION["beat"]), "--schedule", "{schedule}"],
}  # fmt: skip


def local(name: str, **values: object) -> list[str]:
    """The command line of process `name` on this machine, `{placeholders}` filled in."""
    program, *args = (arg.format(**values) for arg in LOCAL[name])
    return [_program(program), *args]


def _program(name: str) -> str:
    if name == "python":
        return sys.executable
    return str(Path(sys.executable).parent / name)


def free_port() -> int:
    """A loopback port nothing listens on now (for a server that binds it itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Deep enough for a fleet connecting at once (the kernel caps it at net.core.somaxconn).
BACKLOG = 4096


def listening_socket(port: int = 0) -> socket.socket:
    """A loopback socket bound to `port` (0: any free one) and listening, inheritable, to hand
    to a server as its fd."""
    listener = socket.create_server(("127.0.0.1", port), backlog=BACKLOG)
    listener.set_inheritable(True)
    return listener
