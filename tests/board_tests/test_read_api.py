"""The read API for frontends: who may read, what a runtime and a task look like, pages by
cursor, bad parameters refused, and the cost of a page independent of its size."""

import uuid

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from common.sql import fetch_one
from runtimes.models import AgentRuntime
from sweeper import state
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db


def url(workspace, what, query=""):
    return f"/api/workspaces/{workspace.id}/{what}{query}"


@pytest.mark.parametrize("what", ["runtimes", "tasks"])
def test_anonymous_is_401_and_a_non_member_404_like_a_missing_workspace(
    client, workspace, django_user_model, what
):
    assert client.get(url(workspace, what)).status_code == 401
    client.force_login(django_user_model.objects.create_user("stranger"))
    refused = client.get(url(workspace, what))
    missing = client.get(f"/api/workspaces/{uuid.uuid4()}/{what}")
    assert refused.status_code == 404
    assert refused.json() == {"error": "workspace not found"}
    assert client.get(f"/api/workspaces/not-a-uuid/{what}").status_code == 404
    assert missing.status_code == 404


def test_runtimes_with_agents_active_work_and_the_database_clock(browser, make, workspace):
    runtime = make.runtime(workspace, daemon_id="box", device_name="Box", seen_ago=5)
    agent = make.agent(runtime, name="coder", status="working")
    make.task(agent, status="running")
    make.task(agent, status="dispatched")
    make.task(agent, status="completed")
    gone = make.runtime(workspace, daemon_id="old", status="offline", seen_ago=600)
    AgentRuntime.objects.filter(pk=gone.pk).update(offline_at=seconds_ago(60))

    answer = browser.get(url(workspace, "runtimes")).json()

    assert set(answer) == {"seq", "now", "sweeper", "runtimes", "next_cursor"}
    assert answer["next_cursor"] is None
    assert answer["sweeper"] == {"braked": False, "blind": False, "message": ""}
    first, second = answer["runtimes"]
    assert first["id"] == str(runtime.id)
    assert {k: first[k] for k in ("name", "provider", "daemon_id", "device", "status")} == {
        "name": "laptop claude",
        "provider": "claude",
        "daemon_id": "box",
        "device": "Box",
        "status": "online",
    }
    assert first["agents"] == [{"id": str(agent.id), "name": "coder", "status": "working"}]
    assert first["active_tasks"] == 2
    assert first["offline_at"] is None
    assert first["last_seen_at"] < answer["now"]
    assert second["status"] == "offline"
    assert second["offline_at"] is not None
    assert second["agents"] == []
    assert second["active_tasks"] == 0


def every_page(browser, workspace, what, limit) -> list[dict]:
    """Every row, following the cursors from the first page to the last."""
    rows, cursor = [], ""
    while True:
        answer = browser.get(url(workspace, what, f"?limit={limit}{cursor}")).json()
        rows += answer[what]
        if not answer["next_cursor"]:
            return rows
        cursor = f"&cursor={answer['next_cursor']}"


def test_runtimes_come_in_pages_by_cursor(browser, make, workspace):
    for i in range(5):
        make.runtime(workspace, daemon_id=f"d{i}")
    seen = [r["daemon_id"] for r in every_page(browser, workspace, "runtimes", 2)]
    assert seen == ["d0", "d1", "d2", "d3", "d4"]


def test_a_page_costs_the_same_queries_whatever_its_size(browser, make, workspace):
    for i in range(30):
        runtime = make.runtime(workspace, daemon_id=f"d{i:02}")
        make.task(make.agent(runtime), status="running")
    browser.get(url(workspace, "runtimes"))  # the sweeper's state row, made on first read

    def queries(what, limit):
        with CaptureQueriesContext(connection) as captured:
            answer = browser.get(url(workspace, what, f"?limit={limit}")).json()
        assert len(answer[what]) == limit
        return len(captured)

    assert queries("runtimes", 1) == queries("runtimes", 30)
    assert queries("tasks", 1) == queries("tasks", 30)


def test_tasks_newest_first_with_names_and_filters(browser, make, workspace):
    runtime = make.runtime(workspace, name="box claude")
    agent = make.agent(runtime, name="coder")
    old = make.task(agent, status="completed", created_at=seconds_ago(60))
    failed = make.task(
        agent, status="failed", failure_reason="timeout", error="task timed out",
        completed_at=Now(),
    )  # fmt: skip
    running = make.task(agent, status="running")
    make.task(make.agent(make.runtime(make.workspace("other"))), status="running")

    everything = browser.get(url(workspace, "tasks")).json()
    assert [t["id"] for t in everything["tasks"]][-1] == str(old.id)
    assert {t["id"] for t in everything["tasks"]} == {str(old.id), str(failed.id), str(running.id)}
    shown = next(t for t in everything["tasks"] if t["id"] == str(failed.id))
    assert shown["agent"] == {"id": str(agent.id), "name": "coder"}
    assert shown["runtime"] == {"id": str(runtime.id), "name": "box claude"}
    assert (shown["failure_reason"], shown["error"], shown["retry"]) == (
        "timeout", "task timed out", None,
    )  # fmt: skip
    assert shown["attempt"] == 1

    def ids(query):
        return [t["id"] for t in browser.get(url(workspace, "tasks", query)).json()["tasks"]]

    assert ids("?status=failed") == [str(failed.id)]
    assert ids("?failure_reason=timeout") == [str(failed.id)]
    assert ids("?failure_reason=orphaned") == []
    assert ids("?status=running,dispatched") == [str(running.id)]


def test_tasks_come_in_pages_newest_first_without_repeats(browser, make, workspace):
    agent = make.agent(make.runtime(workspace))
    made = [make.task(agent, created_at=seconds_ago(100 - i)).id for i in range(7)]
    # Two with the same instant: the id breaks the tie, so neither is lost between pages.
    made += [make.task(agent, created_at=seconds_ago(1)).id for _ in range(2)]
    seen = [t["id"] for t in every_page(browser, workspace, "tasks", 3)]
    assert sorted(seen) == sorted(str(i) for i in made)
    assert len(seen) == len(set(seen))
    assert seen[-7:] == [str(i) for i in reversed(made[:7])]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?status=sleeping", "status must be among queued, dispatched, running, completed, "
                             "failed, cancelled; got 'sleeping'"),
        ("?failure_reason=bored", "failure_reason must be among runtime_offline, timeout, "
                                  "agent_error, orphaned, queued_expired; got 'bored'"),
        ("?failure_reason=timeout,orphaned", "failure_reason takes one reason"),
        ("?cursor=bm9wZQ", "cursor is not one this API handed out"),
        ("?cursor=!!!", "cursor is not one this API handed out"),
        ("?cursor=eHx5", "cursor is not one this API handed out"),
        ("?limit=0", "limit must be a whole number from 1 to 200, got '0'"),
        ("?limit=abc", "limit must be a whole number from 1 to 200, got 'abc'"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_with_the_reason(browser, workspace, query, message):
    answer = browser.get(url(workspace, "tasks", query))
    assert answer.status_code == 400
    assert answer.json() == {"error": message}


def test_only_get_reads(browser, workspace):
    answer = browser.post(url(workspace, "runtimes"))
    assert answer.status_code == 405
    assert answer["Allow"] == "GET"


def test_the_sweepers_brake_and_blindness_are_told(browser, workspace):
    state.read()
    state.engage_brake(online=40, stale=30)
    braked = browser.get(url(workspace, "runtimes")).json()["sweeper"]
    assert braked["braked"] is True
    assert braked["message"].startswith("Mass-outage brake engaged: 30 of 40 runtimes")
    state.release_brake(by="test")
    state.silent_after(fetch_one("SELECT now() AS at").at)
    blind = browser.get(url(workspace, "runtimes")).json()["sweeper"]
    assert blind == {
        "braked": False,
        "blind": True,
        "message": "No heartbeat heard from any daemon: nothing is judged until they are.",
    }
