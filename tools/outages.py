"""The platform run for real, to take apart and put back, and a fleet of simulated daemons at
work on it; what the sweeper decided meanwhile, read back from the database.

- `Platform`: the web process, a Celery worker and beat, on one database and broker, each to
  kill (the whole process tree, SIGKILL: a crash) and start again.
- `working_fleet`: simulated daemons (tools.daemons) in a workspace of their own, each with
  one runtime that holds one running task, listed in its heartbeats.
- `record_verdicts` / `verdicts_since`: a trigger in the database logs every runtime the
  sweeper marks offline and every engagement of the brake, on the database's clock. A
  runtime marked offline and back online a second later leaves no trace in its row; here it
  does.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from multica import processes
from tools import daemons
from tools.daemon import Daemon
from tools.servers import BASE_DIR, kill_tree, stop, wait_for_http

# A task held by a simulated daemon runs this long: for the whole of any scenario.
HOLD_SECONDS = 10**6


class Platform:
    """The web process (on one port for its whole life), a worker and beat, started with
    `env`, their output appended to `<logs>/<name>.log`."""

    NAMES = ("web", "worker", "beat")

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.web_port = processes.free_port()
        self.children: dict[str, subprocess.Popen] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, *names: str) -> None:
        """Starts `names` (all by default); returns once the web process serves, if started."""
        for name in names or self.NAMES:
            argv = self._command(name)
            with (self.logs / f"{name}.log").open("a") as out:  # the child keeps its own copy
                self.children[name] = subprocess.Popen(
                    argv, cwd=BASE_DIR, env=self.env, stdout=out, stderr=out
                )
        if "web" in (names or self.NAMES):
            wait_for_http(self.web_port, self.children["web"])

    def _command(self, name: str) -> list[str]:
        if name == "web":
            return processes.local("web", port=self.web_port)
        if name == "beat":
            return processes.local("beat", schedule=self.logs / "celerybeat-schedule")
        return processes.local(name)

    def kill(self, name: str) -> None:
        kill_tree(self.children.pop(name))

    def stop(self) -> None:
        while self.children:
            stop(self.children.popitem()[1])

    def tail(self, lines: int = 30) -> str:
        """The end of each process's log: to be shown with a failure."""
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:])
            for log in sorted(self.logs.glob("*.log"))
        )


# --- the fleet ----------------------------------------------------------------------------------


def closing(fn, *args):
    """`fn(*args)` on this thread's database connection, closed afterwards: the threads of
    asyncio.to_thread live on, and a connection kept through a database outage is a dead one."""
    from django.db import connection

    try:
        return fn(*args)
    finally:
        connection.close()


async def in_thread(fn, *args):
    return await asyncio.to_thread(closing, fn, *args)


def _workspace_with_token(name: str) -> tuple[str, str]:
    from runtimes.models import Workspace
    from runtimes.tokens import issue_token

    workspace = Workspace.objects.create(name=name)
    return str(workspace.id), issue_token(workspace=workspace)[1]


RUNNING = """
SELECT count(*) AS n FROM agent_task AS t JOIN agent_runtime AS r ON r.id = t.runtime_id
WHERE r.workspace_id = %(workspace_id)s AND t.status = 'running'
"""


def running_tasks(workspace_id: str) -> int:
    from common.sql import fetch_one

    return fetch_one(RUNNING, workspace_id=workspace_id).n


async def working_fleet(
    base: str, count: int, *, heartbeat_seconds: float, timeout: float = 60
) -> list[Daemon]:
    """`count` daemons in a new workspace, beating every `heartbeat_seconds` with leases,
    each with one agent and one task that it has claimed and runs; returns once all run."""
    prefix = uuid.uuid4().hex[:6]
    workspace_id, token = await in_thread(_workspace_with_token, f"fleet {prefix}")
    fleet = await daemons.register_fleet(
        base, token, workspace_id, count, prefix=prefix, work_seconds=HOLD_SECONDS,
        heartbeat_seconds=heartbeat_seconds, leases=True, start=True,
    )  # fmt: skip
    runtime_ids = [runtime_id for daemon in fleet for runtime_id in daemon.runtime_ids]
    await in_thread(daemons.queue_work, runtime_ids, 1)
    deadline = time.monotonic() + timeout
    while (running := await in_thread(running_tasks, workspace_id)) < count:
        assert time.monotonic() < deadline, f"only {running} of {count} tasks running"
        await asyncio.sleep(0.5)
    return fleet


async def leave(fleet: list[Daemon]) -> None:
    """The daemons still alive deregister; the dead ones' runtimes stay as the sweeper left
    them."""
    await asyncio.gather(*(daemon.leave() for daemon in fleet if not daemon.dead))


# --- the sweeper's verdicts ---------------------------------------------------------------------

RECORD_VERDICTS = """
CREATE TABLE IF NOT EXISTS verdict_log (kind text NOT NULL, id text, at timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION log_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO verdict_log VALUES (TG_ARGV[0], NEW.id::text, now());
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER verdict_offline AFTER UPDATE OF status ON agent_runtime FOR EACH ROW
    WHEN (OLD.status = 'online' AND NEW.status = 'offline' AND NEW.offline_reason = 'stale')
    EXECUTE FUNCTION log_verdict('offline');
CREATE OR REPLACE TRIGGER verdict_brake AFTER UPDATE OF brake_engaged_at ON sweeper_state
    FOR EACH ROW WHEN (OLD.brake_engaged_at IS NULL AND NEW.brake_engaged_at IS NOT NULL)
    EXECUTE FUNCTION log_verdict('brake');
"""

FORGET_VERDICTS = """
DROP TRIGGER IF EXISTS verdict_offline ON agent_runtime;
DROP TRIGGER IF EXISTS verdict_brake ON sweeper_state;
DROP FUNCTION IF EXISTS log_verdict();
DROP TABLE IF EXISTS verdict_log;
"""

OFFLINE_SINCE = """
SELECT id, min(at) AS at FROM verdict_log WHERE kind = 'offline' AND at >= %(since)s GROUP BY id
"""
BRAKE_SINCE = "SELECT min(at) AS at FROM verdict_log WHERE kind = 'brake' AND at >= %(since)s"
FAILED_SINCE = """
SELECT runtime_id::text, completed_at, failure_reason, error FROM agent_task
WHERE status = 'failed' AND completed_at >= %(since)s AND runtime_id = ANY(%(runtime_ids)s::uuid[])
"""
NOW = "SELECT now() AS now"


def _script(sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)  # no parameters: the script's own % signs stay as they are


def record_verdicts() -> None:
    _script(RECORD_VERDICTS)


def forget_verdicts() -> None:
    _script(FORGET_VERDICTS)


def db_now() -> datetime:
    from common.sql import fetch_one

    return fetch_one(NOW).now


@dataclass(frozen=True)
class Verdicts:
    offline: dict[str, datetime]  # runtime id: when the sweeper first marked it offline
    failed: dict[str, datetime]  # runtime id: when the sweeper first failed one of its tasks
    brake: datetime | None  # when the brake engaged
    reasons: dict[str, int]  # failure reason: how many of the tasks failed


def verdicts_since(since: datetime, runtime_ids: list[str]) -> Verdicts:
    from common.sql import fetch, fetch_one

    failed: dict[str, datetime] = {}
    reasons: dict[str, int] = {}
    for row in fetch(FAILED_SINCE, since=since, runtime_ids=runtime_ids):
        failed[row.runtime_id] = min(row.completed_at, failed.get(row.runtime_id, row.completed_at))
        reasons[row.failure_reason] = reasons.get(row.failure_reason, 0) + 1
    return Verdicts(
        offline={row.id: row.at for row in fetch(OFFLINE_SINCE, since=since)},
        failed=failed,
        brake=fetch_one(BRAKE_SINCE, since=since).at,
        reasons=reasons,
    )


SWEPT_SINCE = """
SELECT runtimes_swept_at AS at FROM sweeper_state
WHERE id = 1 AND runtimes_swept_at > %(since)s
"""
ONLINE = """
SELECT count(*) AS n FROM agent_runtime
WHERE status = 'online' AND id = ANY(%(runtime_ids)s::uuid[])
"""


def swept_since(since: datetime) -> datetime | None:
    """When the runtimes were last swept, if after `since`."""
    from common.sql import fetch_one

    row = fetch_one(SWEPT_SINCE, since=since)
    return row and row.at


def online_now(runtime_ids: list[str]) -> int:
    """How many of `runtime_ids` are online now."""
    from common.sql import fetch_one

    return fetch_one(ONLINE, runtime_ids=runtime_ids).n
