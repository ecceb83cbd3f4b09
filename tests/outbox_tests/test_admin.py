"""outbox/admin.py: the outbox read-only, by workspace, type and published state, with the
backlog's lag; a page costs the same few queries however many events there are."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from outbox.models import Event
from outbox.record import record
from outbox.wire import event
from tests.helpers.outbox import relay_held_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:outbox_event_changelist")


def recorded(workspace_id, type_: str, count: int = 1) -> None:
    with transaction.atomic():
        record(event(type_, workspace_id, {"n": n}) for n in range(count))


def listed(response) -> list[Event]:
    return list(response.context["cl"].result_list)


@pytest.fixture
def events():
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    recorded(mine, "task:failed", 2)
    recorded(theirs, "agent:status")
    with relay_held_elsewhere():  # not published: its commit found the relay busy
        recorded(mine, "agent:status")
    Event.objects.filter(seq__isnull=True).update(at=Now() - timedelta(minutes=3))
    return mine, theirs


def test_filters_by_type_and_published_state(admin_client, events):
    by_type = listed(admin_client.get(CHANGELIST, {"type": "task:failed"}))
    waiting = listed(admin_client.get(CHANGELIST, {"published": "no"}))
    published = listed(admin_client.get(CHANGELIST, {"published": "yes"}))

    assert [e.type for e in by_type] == ["task:failed"] * 2
    assert [(e.type, e.seq) for e in waiting] == [("agent:status", None)]
    assert len(published) == 3


def test_a_workspace_is_found_by_its_id_and_anything_else_finds_nothing(admin_client, events):
    mine, _ = events
    assert len(listed(admin_client.get(CHANGELIST, {"q": str(mine)}))) == 3
    response = admin_client.get(CHANGELIST, {"q": "not-a-uuid"})
    assert (response.status_code, listed(response)) == (200, [])


def test_the_backlog_and_its_lag_are_shown(admin_client, events):
    html = admin_client.get(CHANGELIST).content.decode()
    assert "Not published yet: 1 event, the oldest waiting 3m" in html
    assert "waiting 3m" in html


def test_events_cannot_be_added_changed_or_deleted(admin_client, events):
    one = Event.objects.filter(seq__isnull=False).first()
    change = reverse("admin:outbox_event_change", args=[one.pk])
    assert admin_client.get(reverse("admin:outbox_event_add")).status_code == 403
    assert admin_client.post(change, {"type": "x"}).status_code == 403
    assert admin_client.post(reverse("admin:outbox_event_delete", args=[one.pk])).status_code == 403
    assert admin_client.get(change).status_code == 200  # viewing is fine
    assert Event.objects.get(pk=one.pk).type == one.type


def test_a_page_costs_the_same_queries_at_any_size(admin_client, events):
    with CaptureQueriesContext(connection) as small:
        admin_client.get(CHANGELIST)
    recorded(uuid.uuid4(), "task:failed", 300)
    with CaptureQueriesContext(connection) as large:
        admin_client.get(CHANGELIST)
    assert len(large.captured_queries) == len(small.captured_queries)
