"""Events from commit to a browser's WebSocket: latency when idle, a mass outage, a backlog.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m bench.events [--events N] [--keep]

A real daphne serves multica.asgi; a real WebSocket client, logged in with a real session
cookie as a member, listens. Changes are committed the way a sweep does, by a thread of this
process for the idle latency and by a process of its own, as a worker is, for the mass outage
and the backlog: their events are recorded in the outbox inside the transaction and relayed
right after commit. Measured:
- commit to socket, one event a transaction, idle (p50, p95), against one bare `group_send`;
- a mass outage: `--events` task failures signalled a chunk a transaction, and the real sweep
  failing as many tasks, until the listener has every one; against one `group_send` an event;
- a backlog: `--events` events committed while the relay could not run (its lock held
  elsewhere), then drained by beat's catch-up task.
Works only in its own database, `<name>_bench_events` on the DATABASE_URL server, which it
creates and migrates, and drops at the end unless --keep; the events travel the channel layer
of REDIS_URL.
"""

import asyncio
import json
import multiprocessing
import statistics
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.db import connection, transaction
from django.utils import timezone
from websockets.asyncio.client import connect

from bench.common import arguments, django_database, relay_held_elsewhere, serving
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


def signal_chunks(tasks: list[FailedTask]) -> None:
    """What a sweep does: one transaction and one signal per chunk of failed tasks."""
    try:
        for start in range(0, len(tasks), CHUNK_SIZE):
            with transaction.atomic():
                tasks_failed.send(sender=FailedTask, tasks=tasks[start : start + CHUNK_SIZE])
    finally:
        connection.close()


def batched(workspace, count: int):
    tasks = failed_tasks(workspace.id, count)
    return lambda: signal_chunks(tasks), {str(task.id) for task in tasks}


def one_by_one(workspace, count: int):
    """The baseline: one `async_to_sync(group_send)` per event, no database."""
    tasks = failed_tasks(workspace.id, count)

    def send():
        layer = get_channel_layer()
        for task in tasks:
            event = wire.event("task:failed", task.workspace_id, wire.task_payload(task))
            message = {"type": BATCH_MESSAGE_TYPE, "events": [wire.frame(event)]}
            async_to_sync(layer.group_send)(wire.group_name(task.workspace_id), message)

    return send, {str(task.id) for task in tasks}


def real_sweep(workspace, count: int):
    """The whole path: `count` running tasks of an offline runtime, failed by the real sweep
    (database time included), recorded and relayed after each chunk commits."""
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


def backlog(workspace, count: int):
    """`count` events committed while another session held the relay's lock (so no commit
    published them); then the lock goes, and the clock starts with beat's catch-up task."""
    from realtime.tasks import relay_events

    tasks = failed_tasks(workspace.id, count)
    with relay_held_elsewhere():
        signal_chunks(tasks)

    def send():
        try:
            relay_events()
        finally:
            connection.close()

    return send, {str(task.id) for task in tasks}


def task_id(message: dict) -> str | None:
    return (message.get("payload") or {}).get("task_id")


def socket_session(url: str, cookie: str):
    headers = {"Cookie": f"sessionid={cookie}"}
    return connect(url, origin="http://127.0.0.1", additional_headers=headers, proxy=None)


async def measure(url: str, cookie: str, send, expected: set[str]) -> float:
    """Seconds from the start of `send` until the listener has every expected task's event."""
    async with socket_session(url, cookie) as ws:
        child = multiprocessing.get_context("fork").Process(target=in_child, args=(send,))
        started = time.perf_counter()
        child.start()
        async with asyncio.timeout(120):
            async for text in ws:
                expected.discard(task_id(json.loads(text)))
                if not expected:
                    break
        elapsed = time.perf_counter() - started
        child.join()
        return elapsed


def in_child(send) -> None:
    """`send` in a process of its own, as a worker is: the listener, like a browser, is not in
    the same process, and does not share its interpreter lock."""
    channel_layers.backends.clear()  # the parent's connections are the parent's
    send()


async def latencies(url: str, cookie: str, workspace, runs: int, *, outbox: bool) -> list[float]:
    """Milliseconds from a commit (or a bare group_send) to its one event on the socket."""
    samples = []
    async with socket_session(url, cookie) as ws:
        for _ in range(runs):
            (task,) = failed_tasks(workspace.id, 1)
            send = (lambda t=task: signal_chunks([t])) if outbox else one_by_one_sender(task)
            started = time.perf_counter()
            threading.Thread(target=send, daemon=True).start()
            while task_id(json.loads(await asyncio.wait_for(ws.recv(), 10))) != str(task.id):
                pass
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)  # idle between events
    return samples


def one_by_one_sender(task):
    event = wire.event("task:failed", task.workspace_id, wire.task_payload(task))
    message = {"type": BATCH_MESSAGE_TYPE, "events": [wire.frame(event)]}
    return lambda: async_to_sync(get_channel_layer().group_send)(
        wire.group_name(task.workspace_id), message
    )


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
    parser.add_argument("--latency-runs", type=int, default=50)
    args = parser.parse_args()
    ways = [
        ("one group_send per event", one_by_one, args.baseline_events or args.events),
        ("signalled chunks, outbox", batched, args.events),
        ("real sweep, outbox", real_sweep, args.events),
        ("backlog, catch-up task", backlog, args.events),
    ]
    rows = []
    with django_database("_bench_events", keep=args.keep), listener() as (workspace, url, cookie):
        runs = args.latency_runs
        bare = asyncio.run(latencies(url, cookie, workspace, runs, outbox=False))
        committed = asyncio.run(latencies(url, cookie, workspace, runs, outbox=True))
        for name, prepare, count in ways:
            send, expected = prepare(workspace, count)
            connection.close()  # the process that sends gets a connection of its own
            rows.append((name, count, asyncio.run(measure(url, cookie, send, expected))))
    print_latency([("bare group_send", bare), ("commit, outbox relay", committed)])
    print_table(rows)


def print_latency(rows) -> None:
    print(f"{'to the socket, idle, one event':<32} {'runs':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, samples in rows:
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{name:<32} {len(samples):>6} {statistics.median(samples):>8.1f} {p95:>8.1f}")
    print("target: commit to socket p50 < 100 ms\n")


def print_table(rows) -> None:
    print(f"{'way':<32} {'events':>8} {'seconds':>9} {'events/s':>10}")
    for name, count, seconds in rows:
        print(f"{name:<32} {count:>8} {seconds:>9.2f} {count / seconds:>10.0f}")
    print("targets: 10,000 events of a mass outage < 1 s; a backlog of 10,000 drained < 2 s")
    (_, slow_count, slow), (_, fast_count, fast) = rows[:2]
    speedup = fast_count / fast / (slow_count / slow)
    print(f"signalled chunks vs one group_send per event: {speedup:.0f}x")


if __name__ == "__main__":
    main()
