"""GET /metrics through Django: the token, the heartbeats counted by result, and the sweeps'
counts read back from the database after real sweeps (a dry run counting nothing)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from common.sql import execute
from outbox.record import record
from outbox.relay import relay
from outbox.wire import event
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tests.helpers.scrape import samples, value

pytestmark = pytest.mark.django_db

NO_GRACE = Rules(reconnect_grace=timedelta(0), max_attempts=1)


def scraped(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


@override_settings(METRICS_TOKEN="s3cret-scrape-token")
@pytest.mark.parametrize("sent", [None, "Bearer wrong", "Bearer s3cret-scrape-toke", "s3cret"])
def test_metrics_are_refused_without_the_token(client, sent):
    headers = {"Authorization": sent} if sent else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert b"multica_" not in response.content


@override_settings(METRICS_TOKEN="s3cret-scrape-token")
def test_metrics_are_served_for_the_token(client):
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert response.status_code == 200
    assert b"multica_runtimes_marked_offline_total" in response.content


def test_heartbeats_are_counted_by_result(client, daemon):
    runtime_id = daemon.register("claude")[0]["id"]
    before = scraped(client)
    for _ in range(3):
        assert daemon.post("heartbeat", {"runtime_id": runtime_id}).status_code == 200
    assert daemon.post("heartbeat", {"runtime_id": runtime_id}, token="nope").status_code == 401
    unknown = {"runtime_id": "00000000-0000-0000-0000-000000000000"}
    assert daemon.post("heartbeat", unknown).status_code == 404
    assert daemon.post("heartbeat", raw=b"{").status_code == 400
    after = scraped(client)

    def added(result):
        name = "multica_heartbeats_total"
        return value(after, name, result=result) - value(before, name, result=result)

    assert [added(r) for r in ("ok", "unauthorized", "unknown_runtime", "bad_request")] == [
        3,
        1,
        1,
        1,
    ]


@override_settings(METRICS_HEARTBEATS=False)
def test_the_switch_stops_counting_heartbeats(client, daemon):
    runtime_id = daemon.register("claude")[0]["id"]
    before = value(scraped(client), "multica_heartbeats_total", result="ok")
    assert daemon.post("heartbeat", {"runtime_id": runtime_id}).status_code == 200
    assert value(scraped(client), "multica_heartbeats_total", result="ok") == before


def test_a_sweep_is_counted_once_it_commits(client, make):
    stale = make.runtime(seen_ago=600)
    make.task(make.agent(stale, status="working"), status="running")
    make.task(make.agent(make.runtime(seen_ago=0, provider="codex")), status="dispatched", age=900)
    make.runtime(seen_ago=0, provider="gemini")
    sweep_stale_runtimes(rules=NO_GRACE)
    sweep_stale_tasks(rules=NO_GRACE)
    got = scraped(client)
    assert value(got, "multica_runtimes_marked_offline_total") == 1
    assert value(got, "multica_tasks_failed_total", reason="runtime_offline") == 1
    assert value(got, "multica_tasks_failed_total", reason="timeout") == 1
    assert value(got, "multica_tasks_failed_total", reason="orphaned") == 0
    assert value(got, "multica_runtimes", status="online") == 2
    assert value(got, "multica_runtimes", status="offline") == 1
    for sweep in ("runtimes", "tasks"):
        assert value(got, "multica_sweep_duration_seconds_count", sweep=sweep) == 1
        assert value(got, "multica_sweep_duration_seconds_bucket", sweep=sweep, le="+Inf") == 1
        assert value(got, "multica_sweep_duration_seconds_sum", sweep=sweep) > 0
        assert value(got, "multica_sweep_last_success_timestamp_seconds", sweep=sweep) > 0
    assert value(got, "multica_sweeper_brake_engaged") == 0
    assert value(got, "multica_sweeper_blind") == 0


def test_a_dry_run_counts_nothing(client, make):
    make.runtime(seen_ago=600)
    call_command("sweep", "--dry-run")
    got = scraped(client)
    assert value(got, "multica_runtimes_marked_offline_total") == 0
    assert ("multica_sweep_duration_seconds_count", (("sweep", "runtimes"),)) not in got


def test_brake_blindness_and_contradictions_are_shown(client):
    execute(
        "INSERT INTO sweeper_state (id, brake_engaged_at, silent_after, contradicted_runtimes)"
        " VALUES (1, now(), now(), 4)"
    )
    got = scraped(client)
    assert value(got, "multica_sweeper_brake_engaged") == 1
    assert value(got, "multica_sweeper_blind") == 1
    assert value(got, "multica_verdicts_contradicted_total", kind="runtime") == 4
    assert value(got, "multica_verdicts_contradicted_total", kind="task") == 0


def test_the_outbox_lag_and_what_the_relay_published(client, make):
    workspace = make.workspace()
    before = scraped(client)
    with transaction.atomic():
        record([event("agent:status", workspace.id, {"agent_id": "a", "status": "idle"})] * 3)
    waiting = scraped(client)
    assert (
        value(waiting, "multica_events_unpublished")
        == value(before, "multica_events_unpublished") + 3
    )
    relay(max_steps=10)
    after = scraped(client)
    assert value(after, "multica_events_unpublished") == 0
    published = "multica_events_published_total"
    assert value(after, published) == value(before, published) + 3
    execute("DELETE FROM outbox_event")  # pruned: the count stays
    assert value(scraped(client), published) == value(after, published)
