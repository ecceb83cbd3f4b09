"""The production processes that sweep and serve, started for real on the test database: daphne
(the whole app on one port), a Celery worker and beat, each of which a test may stop and start
again. Each one's output goes to a log of its own, printed when the test fails."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from multica import processes
from tests.helpers.db import database_url
from tools.servers import BASE_DIR, stop, wait_for_http


class Stack:
    def __init__(self, logs: Path, env: dict):
        self.logs, self.env = logs, env
        self.children: dict[str, subprocess.Popen] = {}
        self.port = 0

    def start(self, name: str) -> None:
        """Starts `name` ("web", "worker" or "beat"); the web on a port of its own, bound here."""
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
            # Serving, not only listening: the socket is bound here, so it accepts (into its
            # backlog) long before daphne has loaded the app on a busy machine.
            wait_for_http(self.port, self.children[name], timeout=90)

    def stop(self, name: str) -> None:
        stop(self.children.pop(name))

    def print_logs(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            print(f"--- {log.name}", *log.read_text().splitlines()[-30:], sep="\n")


@contextmanager
def production_stack(logs: Path, broker_url: str, settings: dict, names=("web", "worker", "beat")):
    """`names` running on the test database with `settings` in their environment, and a broker
    of the caller's own (beat sends to the default queue, which no other run's worker may take
    from); yields the Stack."""
    env = {
        **os.environ,
        **settings,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
    }
    stack = Stack(logs, env)
    try:
        for name in names:
            stack.start(name)
        yield stack
    except BaseException:
        stack.print_logs()
        raise
    finally:
        for name in list(stack.children):
            stack.stop(name)
