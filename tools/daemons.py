"""Simulated daemons for the daemon API: a demo against `make run`, and the load of bench/.

    python -m tools.daemons --token TOKEN --workspace ID [--base http://127.0.0.1:8000]
                            [--daemons 20] [--providers claude,codex] [--work-seconds 20]
                            [--queue 5] [--heartbeat-seconds 15] [--leases]

Each daemon (tools.daemon) registers one runtime per provider, heartbeats every 15 s (with
jitter; with --leases each heartbeat lists the runtime's tasks it runs), and claims, starts and
completes its runtimes' tasks. It rides out a platform outage as a real daemon does: a refused
connection, a timeout or a 5xx is tried again, a heartbeat at its next period, a task's report
every second.
Commands on stdin while it runs:
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
import random
import sys
import time

from tools.connection import Connection
from tools.daemon import HEARTBEAT_SECONDS, REQUEST_TIMEOUT_SECONDS, Daemon


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


async def register_fleet(
    base: str, token: str, workspace_id: str, count: int, *, prefix: str,
    providers=("claude",), work_seconds=20.0, heartbeat_seconds=HEARTBEAT_SECONDS, leases=False,
    start=False,
) -> list[Daemon]:  # fmt: skip
    """`count` daemons, each on a connection of its own, registered; with `start`, each
    beating and claiming from its registration on (a large fleet takes longer to register
    than the stale threshold)."""
    fleet = []
    for i in range(count):
        daemon = Daemon(
            f"sim-{prefix}-{i}",
            Connection(base, token, timeout=REQUEST_TIMEOUT_SECONDS),
            workspace_id,
            list(providers),
            work_seconds,
            heartbeat_seconds=heartbeat_seconds,
            leases=leases,
        )
        await daemon.register()
        if start:
            daemon.start()
        fleet.append(daemon)
    return fleet


async def start_fleet(args) -> list[Daemon]:
    fleet = await register_fleet(
        args.base,
        args.token,
        args.workspace,
        args.daemons,
        prefix=args.prefix,
        providers=args.providers.split(","),
        work_seconds=args.work_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        leases=args.leases,
    )
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
    parser.add_argument("--heartbeat-seconds", type=float, default=HEARTBEAT_SECONDS)
    parser.add_argument(
        "--leases", action="store_true", help="heartbeats list the tasks each runtime runs"
    )
    parser.add_argument("--prefix", default=f"{random.randrange(16**4):04x}")
    return parser.parse_args(argv)


async def main(argv=None) -> None:
    args = parse_args(argv)
    fleet = await start_fleet(args)
    await command_loop(fleet)


if __name__ == "__main__":
    asyncio.run(main())
