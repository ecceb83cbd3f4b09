"""outbox/replay.py: a workspace's head, its numbered events after a cursor, in pages, and the
oldest retained; real rows, numbered by the real relay."""

import uuid

import pytest
from django.db import transaction

from outbox import replay
from outbox.models import Event
from outbox.record import record
from outbox.relay import relay
from outbox.wire import event
from tests.helpers.outbox import relay_held_elsewhere, replayed

pytestmark = pytest.mark.django_db(transaction=True)


def record_committed(workspace_id, count: int, type_: str = "agent:status") -> None:
    with transaction.atomic():
        record(event(type_, workspace_id, {"n": n}) for n in range(count))


def test_a_workspace_without_events_is_at_zero_with_nothing_retained():
    workspace_id = uuid.uuid4()
    assert replay.head_seq(workspace_id) == 0
    assert replay.oldest_seq(workspace_id) is None
    assert replayed(workspace_id, 0, limit=10) == []


def test_events_after_a_cursor_come_in_seq_order_in_pages():
    mine, other = uuid.uuid4(), uuid.uuid4()
    record_committed(mine, 5)
    record_committed(other, 2)
    record_committed(mine, 2)

    assert replay.head_seq(mine) == 7
    assert replay.head_seq(other) == 2
    page = replayed(mine, 2, limit=3)
    assert [(m["seq"], m["payload"]["n"]) for m in page] == [(3, 2), (4, 3), (5, 4)]
    rest = replayed(mine, page[-1]["seq"], limit=10)
    assert [m["seq"] for m in rest] == [6, 7]
    assert set(page[0]) == {"seq", "type", "workspace_id", "actor_type", "payload", "at"}
    assert page[0]["workspace_id"] == str(mine)


def test_unnumbered_events_are_not_replayed_yet():
    workspace_id = uuid.uuid4()
    with relay_held_elsewhere():  # the commit's relay finds another relaying, and leaves
        record_committed(workspace_id, 2)
        assert replayed(workspace_id, 0, limit=10) == []
        assert replay.head_seq(workspace_id) == 0
    relay(max_steps=2)
    assert [m["seq"] for m in replayed(workspace_id, 0, limit=10)] == [1, 2]


def test_the_oldest_retained_seq_moves_with_pruning():
    workspace_id = uuid.uuid4()
    record_committed(workspace_id, 4)
    Event.objects.filter(workspace_id=workspace_id, seq__lte=2).delete()
    assert replay.oldest_seq(workspace_id) == 3
    assert replay.head_seq(workspace_id) == 4
