"""Announcing a mass failure: events/s from the sweep's signal to a browser's WebSocket.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m bench.events [--events N] [--keep]

A real daphne serves multica.asgi; a real WebSocket client, logged in with a real session
cookie as a member, listens. In this process, a worker-like thread sends `tasks_failed` the way
a sweep does (one signal per committed chunk), and the clock stops when the client has
received every event as its own JSON message. The baseline, measured in the same run, is one
`async_to_sync(group_send)` per event. Works only in its own database, `<name>_bench_events`
on the DATABASE_URL server, which it creates and migrates, and drops at the end unless --keep;
the events travel the channel layer of REDIS_URL.
"""

import asyncio
import json
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.utils import timezone
from websockets.asyncio.client import connect

from bench.common import arguments, django_database, serving
from outbox import wire
from outbox.relay import BATCH_MESSAGE_TYPE
from sweeper.config import Rules
from sweeper.results import CHUNK_SIZE
from sweeper.sweeps import sweep_stale_runtimes
from tasks.changes import FailedTask
from tasks.signals import tasks_failed


def failed_tasks(workspace_id, count: int) -> list[FailedTask]:
    return [
        FailedTask(
            id=uuid.uuid4(),
            agent_id=uuid.uuid4(),
            issue_id=uuid.uuid4(),
            runtime_id=uuid.uuid4(),
            workspace_id=workspace_id,
            failure_reason="runtime_offline",
            error="runtime went offline",
        )
        for _ in range(count)
    ]


def batched(workspace, count: int):
    """What a sweep does after each chunk commits: one signal per chunk of failed tasks."""
    tasks = failed_tasks(workspace.id, count)

    def send():
        for start in range(0, len(tasks), CHUNK_SIZE):
            tasks_failed.send(sender=FailedTask, tasks=tasks[start : start + CHUNK_SIZE])

    return send, {str(task.id) for task in tasks}


def one_by_one(workspace, count: int):
    """The baseline: one `async_to_sync(group_send)` per event."""
    tasks = failed_tasks(workspace.id, count)

    def send():
        layer = get_channel_layer()
        for task in tasks:
            event = wire.event("task:failed", task.workspace_id, wire.task_payload(task))
            message = {"type": BATCH_MESSAGE_TYPE, "events": [event]}
            async_to_sync(layer.group_send)(wire.group_name(task.workspace_id), message)

    return send, {str(task.id) for task in tasks}


def real_sweep(workspace, count: int):
    """The whole path: `count` running tasks of an offline runtime, failed by the real sweep
    (database time included), announced after each chunk commits."""
    from runtimes.models import Agent, AgentRuntime  # models need django.setup() first
    from tasks.models import AgentTask

    runtime = AgentRuntime.objects.create(
        workspace=workspace, name="bench", daemon_id="bench", provider="claude", status="offline"
    )
    agent = Agent.objects.create(workspace=workspace, runtime=runtime, name="bench")
    now = timezone.now()
    tasks = AgentTask.objects.bulk_create(
        AgentTask(agent=agent, runtime=runtime, issue_id=uuid.uuid4(), status="running",
                  dispatched_at=now, started_at=now)
        for _ in range(count)
    )  # fmt: skip

    def send():
        try:
            sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)))
        finally:
            connection.close()

    return send, {str(task.id) for task in tasks}


async def measure(url: str, cookie: str, send, expected: set[str]) -> float:
    """Seconds from the start of `send` until the listener has every expected task's event."""
    headers = {"Cookie": f"sessionid={cookie}"}
    origin = "http://127.0.0.1"
    async with connect(url, origin=origin, additional_headers=headers, proxy=None) as ws:
        started = time.perf_counter()
        # A thread with no event loop of its own, like a Celery worker's.
        threading.Thread(target=send, daemon=True).start()
        while expected:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
            expected.discard(message["payload"].get("task_id"))
        return time.perf_counter() - started


@contextmanager
def listener():
    """A member's (workspace, WebSocket URL, session cookie), with daphne serving it."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runtimes.models import Workspace

    workspace = Workspace.objects.create(name="bench events")
    user = get_user_model().objects.create_user("bench")
    workspace.members.add(user)
    client = Client()
    client.force_login(user)
    with serving("ws") as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/workspaces/{workspace.id}/events/"
        yield workspace, url, client.cookies["sessionid"].value


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--baseline-events", type=int, default=None, help="default: --events")
    args = parser.parse_args()
    ways = [
        ("batched (multica.realtime)", batched, args.events),
        ("one group_send per event", one_by_one, args.baseline_events or args.events),
        ("real sweep, batched", real_sweep, args.events),
    ]
    rows = []
    with django_database("_bench_events", keep=args.keep), listener() as (workspace, url, cookie):
        for name, prepare, count in ways:
            send, expected = prepare(workspace, count)
            rows.append((name, count, asyncio.run(measure(url, cookie, send, expected))))
    print_table(rows)


def print_table(rows) -> None:
    print(f"{'way':<28} {'events':>8} {'seconds':>9} {'events/s':>10}")
    for name, count, seconds in rows:
        print(f"{name:<28} {count:>8} {seconds:>9.2f} {count / seconds:>10.0f}")
    (_, fast_count, fast), (_, slow_count, slow) = rows[:2]
    print(f"batched vs one by one: {fast_count / fast / (slow_count / slow):.0f}x")


if __name__ == "__main__":
    main()
