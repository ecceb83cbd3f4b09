"""outbox/relay.py: committed events reach their workspace's group in `seq` order, batched, and
their workspaces' watermarks move past them; a channel layer that is down or hung never undoes
or stalls a change, and its events wait, numbered, for the catch-up."""

import logging
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from multica.processes import free_port
from outbox import relay, wire
from outbox.models import Event, Head
from outbox.record import record
from outbox.wire import event
from realtime.tasks import relay_events
from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.outbox import (
    channel_layer_at,
    group_listener,
    relay_held_elsewhere,
    silent_server,
)
from tests.helpers.threads import held_open
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
    return Event.objects.unpublished().count()


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
    frames = [(first, wire.frame(event("task:failed", first, {"n": n}))) for n in range(1001)]
    frames += [(second, wire.frame(event("task:failed", second, {"n": 0})))]

    batches = list(relay.batches(frames))

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


class Killed(BaseException):
    """The process dying: nothing after it runs, whatever was not committed is lost."""


def test_a_relay_killed_after_publishing_publishes_the_same_seqs_again(make, monkeypatch):
    workspace_id = uuid.uuid4()
    real_publish = relay.publish

    def publish_then_die(events, **kwargs):
        real_publish(events, **kwargs)
        raise Killed

    def late():  # written first (the lower id), committed only after the relay died
        record([event("agent:status", workspace_id, {"who": "late"})])

    with group_listener(workspace_id) as listener:
        with held_open(late):
            with relay_held_elsewhere(), transaction.atomic():  # so its commit relays nothing
                record([event("agent:status", workspace_id, {"who": "first"})])
            monkeypatch.setattr(relay, "publish", publish_then_die)
            with pytest.raises(Killed):
                relay.relay(max_steps=1)
            monkeypatch.setattr(relay, "publish", real_publish)
        relay.relay(max_steps=2)  # (after late's own relay, which may have done it all)
        heard = [(e["seq"], e["payload"]["who"]) for e in listener.events(3)]

    # "first" again with the seq it was published with; "late" after it, never in its place.
    assert heard == [(1, "first"), (1, "first"), (2, "late")]


def test_events_a_failed_publish_left_go_out_first_in_order_in_every_workspace(make):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    with channel_layer_at(free_port()):  # refused: numbered, not published
        with transaction.atomic():
            record(event("agent:status", mine, {"n": n}) for n in range(3))
    assert unpublished() == 3
    relay._layer_down_until = 0.0
    with group_listener(mine) as my_listener, group_listener(theirs) as their_listener:
        with transaction.atomic():
            record(event("agent:status", ws, {"n": n}) for ws in (mine, theirs) for n in (3, 4))
        my_events, their_events = my_listener.events(5), their_listener.events(2)

    assert [(e["seq"], e["payload"]["n"]) for e in my_events] == [(s, s - 1) for s in range(1, 6)]
    assert [(e["seq"], e["payload"]["n"]) for e in their_events] == [(1, 3), (2, 4)]
    heads = Head.objects.values_list("workspace_id", "seq", "published_seq")
    assert sorted(heads) == sorted([(mine, 5, 5), (theirs, 2, 2)])


def test_a_step_publishes_what_it_numbered_without_reading_it_again(make):
    workspace_id = uuid.uuid4()
    with relay_held_elsewhere(), transaction.atomic():
        record(event("agent:status", workspace_id, {"n": n}) for n in range(10))
    with group_listener(workspace_id) as listener, CaptureQueriesContext(connection) as queries:
        relay.relay(max_steps=1)
        assert [e["seq"] for e in listener.events(10)] == list(range(1, 11))

    reads = [q["sql"] for q in queries.captured_queries if "CROSS JOIN LATERAL" in q["sql"]]
    assert reads == []
    assert unpublished() == 0
