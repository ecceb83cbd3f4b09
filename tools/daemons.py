"""Simulated daemons for the daemon API: a demo against `make run`, and the load of bench/.

    python -m tools.daemons --token TOKEN --workspace ID [--base http://127.0.0.1:8000]
                            [--daemons 20] [--providers claude,codex] [--work-seconds 20]
                            [--queue 5]

Each daemon registers one runtime per provider, heartbeats every 15 s (with jitter), and claims,
starts and completes its runtimes' tasks. Commands on stdin while it runs:
    kill N        N daemons die silently: their runtimes go offline on the next sweeps and
                  their tasks fail (watch the admin, or the WebSocket)
    pause N SECS  N daemons stop heartbeating for SECS seconds, then carry on
    status        one line per daemon
    quit          the rest deregister and leave
Only the standard library: one keep-alive HTTP/1.1 connection per daemon, as a real one has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

HEARTBEAT_SECONDS = 15
# +-20% spreads a fleet started at once over the interval instead of beating in lockstep.
JITTER = 0.2


class HttpError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, base: str, token: str):
        url = urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.token = token
        self.reader = self.writer = None
        # A daemon's heartbeat and work loops share the connection, one exchange at a time.
        self.lock = asyncio.Lock()

    async def request(self, method: str, path: str, body=None) -> tuple[int, object]:
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        for attempt in (1, 2):
            try:
                async with self.lock:
                    return await self._exchange(head.encode() + data)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, payload: bytes) -> tuple[int, object]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(payload)
        status_line = await self.reader.readuntil(b"\r\n")
        headers = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), _decode(body)

    async def call(self, method: str, path: str, body=None):
        status, answer = await self.request(method, path, body)
        if status >= 400:
            raise HttpError(status, answer)
        return answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _decode(body: bytes):
    try:
        return json.loads(body) if body else None
    except ValueError:  # an HTML error page from something in front of the API
        return body.decode("utf-8", "replace")


class Daemon:
    """One simulated daemon: its runtimes, a heartbeat loop and a work loop."""

    def __init__(self, name, connection, workspace_id, providers, work_seconds):
        self.name, self.http, self.workspace_id = name, connection, workspace_id
        self.providers, self.work_seconds = providers, work_seconds
        self.runtime_ids: list[str] = []
        self.paused_until = 0.0
        self.dead = False
        self.done = 0
        self.tasks: list[asyncio.Task] = []

    async def register(self) -> None:
        answer = await self.http.call(
            "POST",
            "/api/daemon/register",
            {
                "workspace_id": self.workspace_id,
                "daemon_id": self.name,
                "device_name": f"{self.name} (simulated)",
                "runtimes": [
                    {"name": f"{self.name} {p}", "provider": p, "version": "sim"}
                    for p in self.providers
                ],
            },
        )
        self.runtime_ids = [runtime["id"] for runtime in answer["runtimes"]]

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.heartbeats())]
        self.tasks += [asyncio.create_task(self.work(r)) for r in self.runtime_ids]

    async def heartbeats(self) -> None:
        await asyncio.sleep(random.uniform(0, HEARTBEAT_SECONDS))
        while True:
            if time.monotonic() >= self.paused_until:
                for runtime_id in self.runtime_ids:
                    await self.heartbeat(runtime_id)
            await asyncio.sleep(HEARTBEAT_SECONDS * random.uniform(1 - JITTER, 1 + JITTER))

    async def heartbeat(self, runtime_id: str) -> None:
        try:
            await self.http.call("POST", "/api/daemon/heartbeat", {"runtime_id": runtime_id})
        except HttpError as exc:
            if exc.status != 404:
                raise
            await self.register()  # the runtime is gone: register again, as the API asks

    async def work(self, runtime_id: str) -> None:
        while True:
            if time.monotonic() < self.paused_until:
                await asyncio.sleep(1)
                continue
            try:
                answer = await self.http.call(
                    "POST", f"/api/daemon/runtimes/{runtime_id}/tasks/claim"
                )
            except HttpError as exc:  # 409: offline; the next heartbeat brings it back
                answer = {"task": None} if exc.status == 409 else None
            task = (answer or {}).get("task")
            if task is None:
                await asyncio.sleep(random.uniform(2, 5))
                continue
            await self.run_task(task["id"])

    async def run_task(self, task_id: str) -> None:
        path = f"/api/daemon/tasks/{task_id}"
        await self.http.call("POST", f"{path}/start")
        await asyncio.sleep(self.work_seconds * random.uniform(0.5, 1.5))
        status = (await self.http.call("GET", f"{path}/status"))["status"]
        if status == "running":  # else the sweeper failed it meanwhile: drop the work
            await self.http.call("POST", f"{path}/complete", {"result": {"by": self.name}})
            self.done += 1

    async def die(self) -> None:
        self.dead = True
        for task in self.tasks:
            task.cancel()
        await self.http.close()

    async def leave(self) -> None:
        await self.die()
        await self.http.call("POST", "/api/daemon/deregister", {"runtime_ids": self.runtime_ids})
        await self.http.close()

    def describe(self) -> str:
        state = "paused" if time.monotonic() < self.paused_until else "alive"
        state = "dead" if self.dead else state
        return f"{self.name}: {state}, {len(self.runtime_ids)} runtimes, {self.done} tasks done"


def queue_work(runtime_ids: list[str], tasks_per_agent: int) -> None:
    """Plays the rest of the platform for a demo: one agent per runtime and queued tasks for
    it, written straight to the database of DATABASE_URL (the server's)."""
    import os
    import uuid

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
    django.setup()
    from runtimes.models import Agent, AgentRuntime
    from tasks.models import AgentTask

    for runtime in AgentRuntime.objects.filter(id__in=runtime_ids):
        agent = Agent.objects.create(
            workspace_id=runtime.workspace_id, runtime=runtime, name=f"agent on {runtime.name}"
        )
        AgentTask.objects.bulk_create(
            AgentTask(agent=agent, runtime=runtime, issue_id=uuid.uuid4(), priority=i % 3)
            for i in range(tasks_per_agent)
        )


async def start_fleet(args) -> list[Daemon]:
    fleet = []
    for i in range(args.daemons):
        daemon = Daemon(
            f"sim-{args.prefix}-{i}",
            Connection(args.base, args.token),
            args.workspace,
            args.providers.split(","),
            args.work_seconds,
        )
        await daemon.register()
        fleet.append(daemon)
    if args.queue:
        ids = [r for daemon in fleet for r in daemon.runtime_ids]
        await asyncio.to_thread(queue_work, ids, args.queue)
    for daemon in fleet:
        daemon.start()
    print(f"{len(fleet)} daemons registered; commands: kill N | pause N SECS | status | quit")
    return fleet


async def command_loop(fleet: list[Daemon]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        words = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        alive = [d for d in fleet if not d.dead]
        if not words or words[0] == "quit":
            await asyncio.gather(*(d.leave() for d in alive))
            return
        if words[0] == "kill":
            for daemon in alive[: int(words[1])]:
                await daemon.die()
                print(f"killed {daemon.name}: runtimes {', '.join(daemon.runtime_ids)}")
        elif words[0] == "pause":
            for daemon in alive[: int(words[1])]:
                daemon.paused_until = time.monotonic() + float(words[2])
                print(f"paused {daemon.name} for {words[2]} s")
        elif words[0] == "status":
            print("\n".join(d.describe() for d in fleet))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="from manage.py create_daemon_token")
    parser.add_argument("--workspace", required=True, help="the token's workspace id")
    parser.add_argument("--daemons", type=int, default=20)
    parser.add_argument("--providers", default="claude", help="comma-separated")
    parser.add_argument("--work-seconds", type=float, default=20.0)
    parser.add_argument(
        "--queue",
        type=int,
        default=0,
        help="demo: give each runtime an agent and this many queued tasks (needs DATABASE_URL)",
    )
    parser.add_argument("--prefix", default=f"{random.randrange(16**4):04x}")
    return parser.parse_args(argv)


async def main(argv=None) -> None:
    args = parse_args(argv)
    fleet = await start_fleet(args)
    await command_loop(fleet)


if __name__ == "__main__":
    asyncio.run(main())
