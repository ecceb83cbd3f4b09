"""outbox/relay.py: committed events reach their workspace's group in `seq` order, batched, and
are marked published; a channel layer that is down or hung never undoes or stalls a change,
and its events wait, numbered, for the catch-up."""

import logging
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction

from multica.processes import free_port
from outbox import relay
from outbox.models import Event
from outbox.record import record
from outbox.wire import event
from realtime.tasks import relay_events
from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.outbox import channel_layer_at, group_listener, silent_server
from tools.servers import redis_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _channel_layer_fresh(monkeypatch):
    monkeypatch.setattr(relay, "_layer_down_until", 0.0)


def sweep():
    return sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)))


def outage(make, workspace, runtimes: int = 1):
    for _ in range(runtimes):
        runtime = make.runtime(workspace, seen_ago=60)
        make.task(make.agent(runtime, status="working"), status="running")


def unpublished() -> int:
    return Event.objects.filter(published_at__isnull=True).count()


def relay_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "outbox.relay"]


def test_a_commit_publishes_its_events_in_seq_order_and_marks_them(make):
    workspace = make.workspace()
    with group_listener(workspace.id) as listener:
        with transaction.atomic():
            record(event("agent:status", workspace.id, {"n": n}) for n in range(1201))
        events = listener.events(1201)
        assert listener.messages_left() == 0

    assert [e["seq"] for e in events] == list(range(1, 1202))
    assert [e["payload"]["n"] for e in events] == list(range(1201))
    assert unpublished() == 0


def test_batches_hold_one_workspaces_events_up_to_the_limit():
    first, second = uuid.uuid4(), uuid.uuid4()
    events = [event("task:failed", first, {"n": n}) for n in range(1001)]
    events += [event("task:failed", second, {"n": 0})]

    batches = list(relay.batches(events))

    assert [(group, len(message["events"])) for group, message in batches] == [
        (f"workspace.{first}", 500),
        (f"workspace.{first}", 500),
        (f"workspace.{first}", 1),
        (f"workspace.{second}", 1),
    ]
    assert {m["type"] for _, m in batches} == {"events.batch"}


def test_a_refused_channel_layer_leaves_the_sweep_committed_and_its_events_waiting(make, caplog):
    workspace = make.workspace()
    outage(make, workspace)
    with channel_layer_at(free_port()), caplog.at_level(logging.WARNING):
        sweep()

    assert AgentRuntime.objects.get(workspace=workspace).status == "offline"
    assert AgentTask.objects.get().status == "failed"
    assert unpublished() == 3
    assert list(Event.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    # The first commit's relay failed; the chunk's other two skipped the layer it found down.
    assert relay_logs(caplog)[0] == "outbox.publish_failed"


def test_a_hung_channel_layer_is_given_up_after_the_timeout(make, caplog):
    outage(make, make.workspace())
    with silent_server() as port, channel_layer_at(port), caplog.at_level(logging.WARNING):
        started = time.monotonic()
        sweep()
        elapsed = time.monotonic() - started

    assert relay.PUBLISH_TIMEOUT_SECONDS <= elapsed < relay.PUBLISH_TIMEOUT_SECONDS + 1.5
    assert "outbox.publish_failed" in relay_logs(caplog)
    assert AgentTask.objects.get().status == "failed"
    assert unpublished() == 3


def test_events_committed_during_a_redis_outage_are_delivered_in_order_after_it(make):
    workspace = make.workspace()
    with (
        redis_server() as redis,
        channel_layer_at(redis.port),
        group_listener(workspace.id) as listener,
    ):
        outage(make, workspace, runtimes=2)
        sweep()  # before the outage: heard at once
        before = listener.events(5)

        redis.stop()
        for _ in range(3):
            outage(make, workspace, runtimes=2)
            sweep()  # commits while Redis is down
        assert relay_events() == 0  # the catch-up, too, finds the layer down
        assert unpublished() == 15

        redis.start()  # empty: the group went with the old server
        listener.join()
        assert relay_events() == 15
        after = listener.events(15)

    seqs = [e["seq"] for e in before + after]
    assert seqs == list(range(1, 21))
    assert unpublished() == 0
    failed = [e["payload"]["task_id"] for e in before + after if e["type"] == "task:failed"]
    assert sorted(failed) == sorted(str(t.id) for t in AgentTask.objects.filter(status="failed"))
