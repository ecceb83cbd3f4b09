"""A small simulated fleet for `make run`'s demo workspace, so the board shows life.

    python -m tools.demo_fleet --base http://127.0.0.1:8000 [--churn-seconds 60]

Daemons of tools.daemon heartbeat, claim, run and complete tasks; about every
`--churn-seconds` one of them dies silently (its runtimes go offline, its tasks fail) and one
that died earlier comes back. Two of them take over the seeded daemons of the same names, so
the seed's live work settles one death at a time instead of all in the first minute. Work is
topped up so that there is always something queued. Needs DATABASE_URL (the server's): it
plays the rest of the platform, which makes agents and tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import uuid

from tools.connection import Connection
from tools.daemon import Daemon

WORKSPACE_NAME = "Demo workspace"
# The seeded daemons it adopts (sweeper seed_demo's PLAN), then simulated ones.
FLEET = [
    ("alice-laptop", ["claude", "codex"]),
    ("build-box", ["claude"]),
    ("sim-ada", ["claude", "codex"]),
    ("sim-grace", ["codex"]),
    ("sim-linus", ["claude"]),
]
QUEUED_PER_RUNTIME = 2


def setup() -> tuple[str, str]:
    """The demo workspace's id and a new daemon token for it."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
    django.setup()
    from runtimes.models import Workspace
    from runtimes.tokens import issue_token

    workspace = Workspace.objects.filter(name=WORKSPACE_NAME).first() or Workspace.objects.first()
    if workspace is None:
        raise SystemExit("no workspace: run manage.py seed_demo first")
    _, token = issue_token(workspace=workspace, name="demo fleet")
    return str(workspace.id), token


def top_up(runtime_ids: list[str]) -> None:
    """Queues tasks until each runtime has QUEUED_PER_RUNTIME, on its agent (one made if none)."""
    from runtimes.models import Agent, AgentRuntime
    from tasks.models import AgentTask

    for runtime in AgentRuntime.objects.filter(id__in=runtime_ids, status="online"):
        agent = runtime.agents.order_by("created_at").first() or Agent.objects.create(
            workspace_id=runtime.workspace_id, runtime=runtime, name=f"{runtime.provider} agent"
        )
        queued = runtime.tasks.filter(status="queued").count()
        AgentTask.objects.bulk_create(
            AgentTask(agent=agent, runtime=runtime, issue_id=uuid.uuid4(), priority=i % 3)
            for i in range(QUEUED_PER_RUNTIME - queued)
        )


class Fleet:
    def __init__(self, args, workspace_id: str, token: str):
        self.args, self.workspace_id, self.token = args, workspace_id, token
        self.alive: list[Daemon] = []
        self.dead: list[tuple[str, list[str]]] = []

    async def start(self, name: str, providers: list[str]) -> None:
        daemon = Daemon(
            name,
            Connection(self.args.base, self.token),
            self.workspace_id,
            providers,
            self.args.work_seconds,
        )
        await daemon.register()
        await asyncio.to_thread(top_up, daemon.runtime_ids)
        daemon.start()
        self.alive.append(daemon)

    async def churn(self) -> None:
        """One silent death, then one comeback of a daemon that died before."""
        victim = random.choice(self.alive)
        self.alive.remove(victim)
        await victim.die()
        print(f"demo fleet: {victim.name} died", flush=True)
        if len(self.dead) >= 1:
            name, providers = self.dead.pop(0)
            await self.start(name, providers)
            print(f"demo fleet: {name} is back", flush=True)
        self.dead.append((victim.name, victim.providers))

    async def run(self) -> None:
        for name, providers in FLEET:
            await self.start(name, providers)
        print(f"demo fleet: {len(self.alive)} daemons", flush=True)
        while True:
            await asyncio.sleep(self.args.churn_seconds * random.uniform(0.75, 1.25))
            await self.churn()
            ids = [r for daemon in self.alive for r in daemon.runtime_ids]
            await asyncio.to_thread(top_up, ids)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--churn-seconds", type=float, default=60.0)
    parser.add_argument("--work-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    workspace_id, token = setup()
    try:
        asyncio.run(Fleet(args, workspace_id, token).run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
