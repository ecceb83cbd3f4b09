"""`seq`: gap-free and strictly increasing per workspace in the order the changes committed,
with concurrent writers and a transaction that commits after a later-started one."""

import random
import uuid

import pytest
from django.db import transaction

from outbox import replay
from outbox.models import Event
from outbox.record import record
from outbox.relay import relay
from outbox.wire import event
from tests.helpers.outbox import replayed
from tests.helpers.threads import held_open, together

pytestmark = pytest.mark.django_db(transaction=True)


def writer(workspace_id, name: str, transactions: int):
    """`transactions` commits of one to three events each; each commit's own relay runs after
    it, racing the other writers' for the relay's lock."""

    def write():
        rng = random.Random(name)
        for n in range(transactions):
            with transaction.atomic():
                count = rng.randint(1, 3)
                record(
                    event("agent:status", workspace_id, {"w": name, "n": n}) for _ in range(count)
                )
        return name

    return write


def test_seq_is_gap_free_under_four_concurrent_writers():
    workspace_id = uuid.uuid4()
    other = uuid.uuid4()
    writers = [writer(workspace_id, f"w{i}", 30) for i in range(4)]
    together(*writers, writer(other, "other", 30))
    relay(max_steps=10)  # whatever a commit's relay left, as the catch-up would

    rows = list(Event.objects.filter(workspace_id=workspace_id).order_by("seq"))
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert replay.head_seq(workspace_id) == len(rows)
    # Each writer's commits came one after another: their events keep that order in `seq`.
    for name in ("w0", "w1", "w2", "w3"):
        mine = [r.payload["n"] for r in rows if r.payload["w"] == name]
        assert mine == sorted(mine)
        assert set(mine) == set(range(30))
    theirs = Event.objects.filter(workspace_id=other).order_by("seq")
    assert list(theirs.values_list("seq", flat=True)) == list(range(1, theirs.count() + 1))


def test_a_transaction_that_commits_later_is_numbered_later_though_it_wrote_first():
    workspace_id = uuid.uuid4()

    def early():
        record([event("agent:status", workspace_id, {"who": "early"})])

    with held_open(early):  # written first (the lower id), committed last
        with transaction.atomic():
            record([event("agent:status", workspace_id, {"who": "late"})])
        relay(max_steps=2)
        assert [m["payload"]["who"] for m in replayed(workspace_id, 0, 10)] == ["late"]
    relay(max_steps=2)

    events = replayed(workspace_id, 0, 10)
    assert [(m["seq"], m["payload"]["who"]) for m in events] == [(1, "late"), (2, "early")]
    early_row, _ = Event.objects.order_by("id")
    assert early_row.payload["who"] == "early"  # the id order a cursor on ids would have used
