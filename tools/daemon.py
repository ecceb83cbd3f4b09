"""One simulated daemon of the daemon API (the fleets of tools.daemons, tools.outages and
tools.demo_fleet are made of them).

It registers one runtime per provider, heartbeats every 15 s (with jitter; with leases each
heartbeat lists the runtime's tasks it runs), and claims, starts and completes its runtimes'
tasks. It rides out a platform outage as a real daemon does: a refused connection, a timeout
or a 5xx is tried again, a heartbeat at its next period, a task's report every second. Only
the standard library: one keep-alive HTTP/1.1 connection per daemon, as a real one has.
"""

from __future__ import annotations

import asyncio
import random
import time

from tools.connection import HttpError, is_outage

HEARTBEAT_SECONDS = 15
# +-20% spreads a fleet started at once over the interval instead of beating in lockstep.
JITTER = 0.2
# A request unanswered this long is given up (its connection closed) and tried again later.
REQUEST_TIMEOUT_SECONDS = 10
RETRY_SECONDS = 1


class Daemon:
    """One simulated daemon: its runtimes, a heartbeat loop and a work loop."""

    def __init__(
        self, name, connection, workspace_id, providers, work_seconds,
        heartbeat_seconds=HEARTBEAT_SECONDS, leases=False,
    ):  # fmt: skip
        self.name, self.http, self.workspace_id = name, connection, workspace_id
        self.providers, self.work_seconds = providers, work_seconds
        self.heartbeat_seconds, self.leases = heartbeat_seconds, leases
        self.runtime_ids: list[str] = []
        self.running: dict[str, set[str]] = {}  # runtime id: the ids of the tasks it runs
        # Held by a heartbeat from reading the list to its answer, and by a claim until its
        # task is listed: a list read before a claim but sent after it would disown the task.
        self.listing = asyncio.Lock()
        self.paused_until = 0.0
        self.dead = False
        self.done = self.failed_requests = 0
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
        for runtime_id in self.runtime_ids:
            self.running.setdefault(runtime_id, set())

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.heartbeats())]
        self.tasks += [asyncio.create_task(self.work(r)) for r in self.runtime_ids]

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    async def heartbeats(self) -> None:
        period = self.heartbeat_seconds
        await asyncio.sleep(random.uniform(0, period))
        while True:
            if not self.paused():
                for runtime_id in self.runtime_ids:
                    await self.outage_tolerant(self.heartbeat(runtime_id))
            await asyncio.sleep(period * random.uniform(1 - JITTER, 1 + JITTER))

    async def heartbeat(self, runtime_id: str) -> None:
        try:
            async with self.listing:
                body = {"runtime_id": runtime_id}
                if self.leases:
                    body["running_task_ids"] = sorted(self.running[runtime_id])
                await self.http.call("POST", "/api/daemon/heartbeat", body)
        except HttpError as exc:
            if exc.status != 404:
                raise
            await self.register()  # the runtime is gone: register again, as the API asks

    async def outage_tolerant(self, request) -> bool:
        """Awaits `request`; False if the platform failed it (counted, to be tried later)."""
        try:
            await request
            return True
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.failed_requests += 1
            return False

    async def work(self, runtime_id: str) -> None:
        while True:
            if self.paused():
                await asyncio.sleep(1)
                continue
            try:
                answer = await self.claim(runtime_id)
            except HttpError as exc:  # 409: offline; the next heartbeat brings it back
                if exc.status >= 500:
                    self.failed_requests += 1
                answer = {"task": None} if exc.status == 409 else None
            except (OSError, asyncio.IncompleteReadError):
                self.failed_requests += 1
                answer = None
            task = (answer or {}).get("task")
            if task is None:
                await asyncio.sleep(random.uniform(2, 5))
                continue
            await self.run_task(runtime_id, task["id"])

    async def claim(self, runtime_id: str):
        async with self.listing:
            answer = await self.http.call("POST", f"/api/daemon/runtimes/{runtime_id}/tasks/claim")
            if answer.get("task"):
                self.running[runtime_id].add(answer["task"]["id"])
        return answer

    async def run_task(self, runtime_id: str, task_id: str) -> None:
        path = f"/api/daemon/tasks/{task_id}"
        running = self.running[runtime_id]
        try:
            if await self.report("POST", f"{path}/start") is None:
                return
            await asyncio.sleep(self.work_seconds * random.uniform(0.5, 1.5))
            answer = await self.report("GET", f"{path}/status")
            if answer and answer["status"] == "running":  # else the sweeper failed it: drop it
                result = {"result": {"by": self.name}}
                if await self.report("POST", f"{path}/complete", result) is not None:
                    self.done += 1
        finally:
            running.discard(task_id)

    async def report(self, method: str, path: str, body=None):
        """A call about a task, tried again through platform outages until it is answered;
        the answer, or None if it was refused (a 4xx: the task is not ours any more)."""
        while True:
            try:
                return await self.http.call(method, path, body)
            except HttpError as exc:
                if exc.status < 500:
                    return None
            except (OSError, asyncio.IncompleteReadError):
                pass
            self.failed_requests += 1
            await asyncio.sleep(RETRY_SECONDS)

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
        state = "paused" if self.paused() else "alive"
        state = "dead" if self.dead else state
        return f"{self.name}: {state}, {len(self.runtime_ids)} runtimes, {self.done} tasks done"
