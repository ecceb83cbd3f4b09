"""runtimes/admin.py: what the runtime list shows, what an operator may not edit, and that a
page costs the same few queries however many rows there are."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from common.admin import EstimatedCountPaginator, human_duration
from runtimes.models import AgentRuntime
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:runtimes_agentruntime_changelist")


def take_offline(runtime, seconds_ago_offline: float) -> AgentRuntime:
    AgentRuntime.objects.filter(pk=runtime.pk).update(
        status="offline", offline_at=seconds_ago(seconds_ago_offline)
    )
    runtime.refresh_from_db()
    return runtime


def listed_names(response) -> list[str]:
    return sorted(runtime.name for runtime in response.context["cl"].result_list)


def test_changelist_shows_status_workspace_daemon_and_how_long_offline(admin_client, make):
    workspace = make.workspace("acme-corp")
    take_offline(make.runtime(workspace, name="old-mac", daemon_id="d-old"), 3 * 3600 + 125)
    make.runtime(workspace, name="new-box", daemon_id="d-new")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("old-mac", "new-box", "acme-corp", "d-old", "d-new", "offline", "online"):
        assert text in html
    # Measured on the database clock from offline_at: 3 h 2 min, whatever the test's speed.
    assert "3h 2m" in html


def test_online_runtime_has_no_offline_duration(admin_client, make):
    make.runtime(name="fresh")

    response = admin_client.get(CHANGELIST)

    runtime = response.context["cl"].result_list[0]
    admin = response.context["cl"].model_admin
    assert admin.offline_for(runtime) is None


def test_filter_by_status_lists_only_offline_runtimes(admin_client, make):
    take_offline(make.runtime(name="gone"), 60)
    make.runtime(name="alive")

    response = admin_client.get(CHANGELIST, {"status__exact": "offline"})

    assert listed_names(response) == ["gone"]


@pytest.mark.parametrize(("term", "expected"), [("laptop", ["laptop"]), ("d-7f3a", ["ci"])])
def test_search_by_name_or_daemon_id(admin_client, make, term, expected):
    make.runtime(name="laptop", daemon_id="d-0001")
    make.runtime(name="ci", daemon_id="d-7f3a")

    response = admin_client.get(CHANGELIST, {"q": term})

    assert listed_names(response) == expected


def test_sweeper_owned_fields_are_read_only(admin_client, make):
    runtime = make.runtime(name="laptop", seen_ago=5)
    url = reverse("admin:runtimes_agentruntime_change", args=[runtime.pk])

    form = admin_client.get(url).context["adminform"].form
    assert {"status", "last_seen_at", "offline_at"}.isdisjoint(form.fields)

    response = admin_client.post(url, change_post(runtime, name="renamed"))

    assert response.status_code == 302
    after = AgentRuntime.objects.get(pk=runtime.pk)
    assert after.name == "renamed"
    assert (after.status, after.last_seen_at, after.offline_at) == (
        "online",
        runtime.last_seen_at,
        None,
    )


def change_post(runtime, **changes) -> dict:
    data = {
        "workspace": runtime.workspace_id,
        "name": runtime.name,
        "daemon_id": runtime.daemon_id,
        "provider": runtime.provider,
        "device_name": "",
        "version": "",
        "metadata": "{}",
        # Attempts on read-only fields, which the form must ignore.
        "status": "offline",
        "last_seen_at_0": "2000-01-01",
        "last_seen_at_1": "00:00:00",
        "offline_at_0": "2000-01-01",
        "offline_at_1": "00:00:00",
    }
    return data | changes


def test_change_form_does_not_list_every_workspace(admin_client, make):
    runtime = make.runtime(make.workspace("mine"))
    make.workspace("someone-else")

    response = admin_client.get(reverse("admin:runtimes_agentruntime_change", args=[runtime.pk]))

    html = response.content.decode()
    assert "admin-autocomplete" in html
    assert "someone-else" not in html


def test_workspace_members_use_the_two_box_picker(admin_client, make):
    workspace = make.workspace()

    response = admin_client.get(reverse("admin:runtimes_workspace_change", args=[workspace.pk]))

    assert 'class="selectfilter"' in response.content.decode()


def count_changelist_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST, params or {}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"status__exact": "offline"}, {"q": "rt"}])
def test_changelist_queries_do_not_grow_with_rows(admin_client, make, params):
    def add_runtimes(n):
        for _ in range(n):
            take_offline(make.runtime(name="rt"), 60)

    add_runtimes(5)
    few = count_changelist_queries(admin_client, params)
    add_runtimes(45)
    many = count_changelist_queries(admin_client, params)

    assert len(AgentRuntime.objects.all()) == 50
    assert many == few


def test_unfiltered_large_list_is_counted_from_statistics(admin_client, make, monkeypatch):
    for _ in range(3):
        make.runtime(name="rt")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE agent_runtime")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 1)

    with CaptureQueriesContext(connection) as unfiltered:
        admin_client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as filtered:
        admin_client.get(CHANGELIST, {"status__exact": "online"})

    def counts(queries):
        return [q["sql"] for q in queries if "COUNT(" in q["sql"] and "agent_runtime" in q["sql"]]

    assert counts(unfiltered) == []
    assert len(counts(filtered)) == 1
    assert any("reltuples" in q["sql"] for q in unfiltered)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (725, "12m 5s"),
        (3 * 3600 + 125, "3h 2m"),
        (2 * 86400 + 3600, "2d 1h"),
    ],
)
def test_human_duration_shows_the_two_largest_units(seconds, text):
    assert human_duration(timedelta(seconds=seconds)) == text


def test_sorting_by_offline_for_puts_the_longest_outage_first(admin_client, make):
    take_offline(make.runtime(name="minute"), 60)
    take_offline(make.runtime(name="hour"), 3600)
    # Column numbers count the action checkbox too: take them from the changelist itself.
    column = admin_client.get(CHANGELIST).context["cl"].list_display.index("offline_for")

    longest_first = admin_client.get(CHANGELIST, {"o": f"-{column}"})
    shortest_first = admin_client.get(CHANGELIST, {"o": str(column)})

    assert [r.name for r in longest_first.context["cl"].result_list] == ["hour", "minute"]
    assert [r.name for r in shortest_first.context["cl"].result_list] == ["minute", "hour"]


def test_revoking_a_daemon_token_in_the_admin_locks_its_daemon_out(admin_client, make):
    from runtimes.models import DaemonToken
    from runtimes.tokens import issue_token

    workspace = make.workspace()
    token, secret = issue_token(workspace=workspace, name="laptop")
    heartbeat = {
        "path": "/api/daemon/heartbeat",
        "data": {"runtime_id": str(make.runtime(workspace).id)},
    }
    auth = {"content_type": "application/json", "HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert admin_client.post(**heartbeat, **auth).status_code == 200

    response = admin_client.post(
        reverse("admin:runtimes_daemontoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert response.status_code == 302
    assert DaemonToken.objects.get(pk=token.pk).revoked_at is not None
    assert admin_client.post(**heartbeat, **auth).status_code == 401
