"""The product's production processes on this machine, for end-to-end tests: daphne (web and
WebSocket, on one port that survives a restart), a Celery worker and beat, on the test
database, with their logs in a directory of the test's and shown with a failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from multica import processes
from tests.helpers.db import database_url
from tools.servers import BASE_DIR, stop, wait_for_port


class Product:
    def __init__(self, logs: Path, env: dict):
        self.logs, self.env = logs, env
        self.children: dict[str, subprocess.Popen] = {}
        self.port = 0

    def start(self, name: str) -> None:
        """Starts process `name` ("web", "worker" or "beat"); the web binds `self.port` (a
        free one the first time, the same one again after `stop("web")`)."""
        handed = []
        if name == "web":
            listener = processes.listening_socket(self.port)
            self.port, handed = listener.getsockname()[1], [listener.fileno()]
            argv = processes.local("ws", fd=listener.fileno())
        elif name == "beat":
            argv = processes.local("beat", schedule=self.logs / "celerybeat-schedule")
        else:
            argv = processes.local(name)
        with (self.logs / f"{name}.log").open("a") as out:  # the child keeps its own copy
            self.children[name] = subprocess.Popen(
                argv, cwd=BASE_DIR, env=self.env, stdout=out, stderr=out, pass_fds=handed
            )
        if handed:
            listener.close()
            wait_for_port(self.port, processes=self.children.values())

    def stop(self, name: str) -> None:
        stop(self.children.pop(name))

    def show_logs(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            print(f"--- {log.name}", *log.read_text().splitlines()[-30:], sep="\n")


@contextmanager
def production_processes(logs: Path, broker_url: str, settings: dict) -> Iterator[Product]:
    """daphne, a worker and beat on the test database with `settings` in their environment
    and a broker of the caller's (beat's default queue must be this run's alone)."""
    env = {
        **os.environ,
        **settings,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
    }
    product = Product(logs, env)
    try:
        for name in ("web", "worker", "beat"):
            product.start(name)
        yield product
    except BaseException:
        product.show_logs()
        raise
    finally:
        for name in list(product.children):
            product.stop(name)
