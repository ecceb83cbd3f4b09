"""Events are recorded in the transaction of their change: exactly one per committed change,
none for a rolled-back one, one statement per signal however many rows."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from outbox.models import Event
from outbox.record import record
from outbox.wire import event
from runtimes.agents import set_working
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes

pytestmark = pytest.mark.django_db(transaction=True)


def sweep():
    return sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)), chunk_size=10)


def outage(make, workspace, runtimes: int):
    for _ in range(runtimes):
        runtime = make.runtime(workspace, seen_ago=60)
        make.task(make.agent(runtime, status="working"), status="running")


def test_each_committed_change_has_exactly_one_event(make):
    workspace = make.workspace()
    outage(make, workspace, 15)  # below the brake's fleet size: a plain outage

    result = sweep()
    sweep()  # nothing left to change: nothing recorded

    events = Event.objects.filter(workspace_id=workspace.id)
    assert Counter(events.values_list("type", flat=True)) == {
        "task:failed": 15,
        "agent:status": 15,
        "daemon:register": 2,  # one per workspace and chunk of 10
    }
    failed = [e.payload["task_id"] for e in events.filter(type="task:failed")]
    assert sorted(failed) == sorted(str(t.id) for t in result.tasks_failed)
    offline = [i for e in events.filter(type="daemon:register") for i in e.payload["runtime_ids"]]
    assert sorted(offline) == sorted(str(r.id) for r in result.runtimes_marked_offline)


def test_a_rolled_back_change_leaves_no_event(make):
    outage(make, make.workspace(), 3)

    with transaction.atomic():
        sweep()
        assert Event.objects.count() == 7  # recorded, inside the transaction...
        transaction.set_rollback(True)

    assert Event.objects.count() == 0  # ...and gone with it


def test_a_chunk_records_its_events_in_one_statement_a_signal(make):
    outage(make, make.workspace(), 10)

    with CaptureQueriesContext(connection) as queries:
        sweep()

    inserts = [q for q in queries.captured_queries if "INSERT INTO outbox_event" in q["sql"]]
    assert len(inserts) == 3  # runtimes offline, tasks failed, agents idled: one chunk
    assert Event.objects.count() == 21


def test_events_keep_the_order_they_were_recorded_in(make):
    workspace = make.workspace()
    with transaction.atomic():
        record(event("agent:status", workspace.id, {"n": n}) for n in range(5))
    events = Event.objects.filter(workspace_id=workspace.id).order_by("seq")
    assert [e.payload["n"] for e in events] == [0, 1, 2, 3, 4]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]


def test_a_change_outside_a_transaction_is_refused_and_records_nothing(make):
    agent = make.agent(make.runtime(), status="idle")
    with pytest.raises(TransactionManagementError):
        set_working(agent_id=agent.id)  # its own statement has committed: no place for an event
    with pytest.raises(TransactionManagementError):
        record([event("agent:status", agent.workspace_id, {})])
    assert Event.objects.count() == 0
