"""The task endpoints: claim, start, complete, fail, status, and their refusals."""

import uuid

import pytest
from django.db.models.functions import Now

from runtimes.changes import AgentChange
from runtimes.models import Agent
from tasks.changes import FailedTask
from tasks.models import AgentTask
from tests.helpers.db import db_now, seconds_ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(daemon, make):
    return make.agent(make.runtime(daemon.workspace), status="idle", max_concurrent_tasks=2)


def claim(daemon, runtime):
    return daemon.post(f"runtimes/{runtime.id}/tasks/claim")


def snapshot():
    return sorted(
        AgentTask.objects.values_list("id", "status", "dispatched_at", "started_at", "error")
    )


# --- claim ------------------------------------------------------------------------------------


def test_claim_hands_out_the_highest_priority_then_the_oldest(daemon, make, agent):
    low = make.task(agent, priority=1)
    newer = make.task(agent, priority=5)
    older = make.task(agent, priority=5)
    for task, age in ((low, 100), (newer, 10), (older, 20)):
        AgentTask.objects.filter(id=task.id).update(created_at=seconds_ago(age))

    first = claim(daemon, agent.runtime).json()["task"]
    second = claim(daemon, agent.runtime).json()["task"]

    assert first == {
        "id": str(older.id),
        "agent_id": str(agent.id),
        "issue_id": str(older.issue_id),
        "runtime_id": str(agent.runtime_id),
        "priority": 5,
        "status": "dispatched",
    }
    assert second["id"] == str(newer.id)
    older.refresh_from_db()
    assert (older.status, older.dispatched_at) == ("dispatched", db_now())


def test_claim_sets_an_idle_agent_working_and_announces_it_once(daemon, make, agent, signal_log):
    make.task(agent)
    make.task(agent)

    claim(daemon, agent.runtime)
    claim(daemon, agent.runtime)

    assert Agent.objects.get(id=agent.id).status == "working"
    assert signal_log.agents == [
        AgentChange(id=agent.id, workspace_id=daemon.workspace.id, status="working")
    ]


def test_claim_leaves_a_blocked_agent_blocked(daemon, make, agent, signal_log):
    Agent.objects.filter(id=agent.id).update(status="blocked")
    make.task(agent)

    assert claim(daemon, agent.runtime).json()["task"] is not None
    assert Agent.objects.get(id=agent.id).status == "blocked"
    assert signal_log.agents == []


def test_claim_skips_an_agent_at_its_limit_and_serves_another(daemon, make, agent):
    make.task(agent, status="running")
    make.task(agent, status="dispatched")
    make.task(agent, priority=9)
    other = make.agent(agent.runtime, name="reviewer")
    theirs = make.task(other, priority=0)

    task = claim(daemon, agent.runtime).json()["task"]

    assert task["id"] == str(theirs.id)
    assert claim(daemon, agent.runtime).json() == {"task": None}


def test_claim_with_nothing_queued_answers_null(daemon, make, agent):
    make.task(agent, status="completed")

    response = claim(daemon, agent.runtime)

    assert (response.status_code, response.json()) == (200, {"task": None})


def test_claim_on_an_offline_runtime_is_a_conflict(daemon, make, agent):
    type(agent.runtime).objects.filter(id=agent.runtime_id).update(status="offline")
    make.task(agent)
    before = snapshot()

    response = claim(daemon, agent.runtime)

    assert (response.status_code, response.json()) == (
        409,
        {"error": "runtime is offline: send a heartbeat first"},
    )
    assert snapshot() == before


def test_claim_on_another_workspaces_runtime_looks_like_no_runtime(daemon, make):
    theirs = make.agent(make.runtime(make.workspace("other")))
    make.task(theirs)
    before = snapshot()

    foreign = claim(daemon, theirs.runtime)
    unknown = daemon.post(f"runtimes/{uuid.uuid4()}/tasks/claim")
    garbage = daemon.post("runtimes/not-a-uuid/tasks/claim")

    assert {(r.status_code, r.content) for r in (foreign, unknown, garbage)} == {
        (404, b'{"error": "runtime not found"}')
    }
    assert snapshot() == before


# --- start, complete, fail ------------------------------------------------------------------


def test_start_moves_a_dispatched_task_to_running(daemon, make, agent):
    task = make.task(agent, status="dispatched")

    response = daemon.post(f"tasks/{task.id}/start")

    assert response.json() == {"id": str(task.id), "status": "running"}
    task.refresh_from_db()
    assert (task.status, task.started_at) == ("running", db_now())


@pytest.mark.parametrize("status", ["queued", "running", "completed", "failed", "cancelled"])
def test_start_from_any_other_state_is_a_conflict(daemon, make, agent, status):
    task = make.task(agent, status=status)
    before = snapshot()

    response = daemon.post(f"tasks/{task.id}/start")

    assert (response.status_code, response.json()) == (
        409,
        {"error": f"task is {status}, not dispatched"},
    )
    assert snapshot() == before


def test_complete_keeps_the_result_and_idles_an_agent_left_without_work(
    daemon, make, agent, signal_log
):
    Agent.objects.filter(id=agent.id).update(status="working")
    task = make.task(agent, status="running")

    response = daemon.post(f"tasks/{task.id}/complete", {"result": {"pr": 42, "ok": True}})

    assert response.json() == {"id": str(task.id), "status": "completed"}
    task.refresh_from_db()
    assert (task.status, task.result, task.completed_at) == (
        "completed",
        {"pr": 42, "ok": True},
        db_now(),
    )
    assert signal_log.agents == [
        AgentChange(id=agent.id, workspace_id=daemon.workspace.id, status="idle")
    ]


def test_complete_leaves_an_agent_with_other_work_working(daemon, make, agent, signal_log):
    Agent.objects.filter(id=agent.id).update(status="working")
    task = make.task(agent, status="running")
    make.task(agent, status="dispatched")

    daemon.post(f"tasks/{task.id}/complete", {"result": {}})

    assert Agent.objects.get(id=agent.id).status == "working"
    assert signal_log.agents == []


@pytest.mark.parametrize(
    ("body", "message"),
    [({}, "result: required object"), ({"result": [1]}, "result: required object")],
)
def test_complete_without_a_result_object_is_a_bad_request(daemon, make, agent, body, message):
    task = make.task(agent, status="running")
    before = snapshot()

    response = daemon.post(f"tasks/{task.id}/complete", body)

    assert (response.status_code, response.json()) == (400, {"error": message})
    assert snapshot() == before


@pytest.mark.parametrize("number", [b"1e400", b"-1e400"])
def test_a_number_beyond_float_range_is_a_bad_request_not_a_crash(daemon, make, agent, number):
    task = make.task(agent, status="running")
    before = snapshot()

    response = daemon.post(f"tasks/{task.id}/complete", raw=b'{"result": {"x": ' + number + b"}}")

    assert (response.status_code, response.json()) == (400, {"error": "body is not valid JSON"})
    assert snapshot() == before


def test_complete_a_dispatched_task_is_a_conflict(daemon, make, agent):
    task = make.task(agent, status="dispatched")

    response = daemon.post(f"tasks/{task.id}/complete", {"result": {}})

    assert (response.status_code, response.json()) == (
        409,
        {"error": "task is dispatched, not running"},
    )


@pytest.mark.parametrize("status", ["dispatched", "running"])
def test_fail_records_the_agents_error_and_announces_it(daemon, make, agent, signal_log, status):
    Agent.objects.filter(id=agent.id).update(status="working")
    task = make.task(agent, status=status)

    response = daemon.post(f"tasks/{task.id}/fail", {"error": "model refused"})

    assert response.json() == {"id": str(task.id), "status": "failed"}
    task.refresh_from_db()
    assert (task.status, task.failure_reason, task.error, task.completed_at) == (
        "failed",
        "agent_error",
        "model refused",
        db_now(),
    )
    assert signal_log.tasks_failed == [
        FailedTask(
            id=task.id,
            agent_id=agent.id,
            issue_id=task.issue_id,
            runtime_id=agent.runtime_id,
            workspace_id=daemon.workspace.id,
            failure_reason="agent_error",
            error="model refused",
        )
    ]
    assert [a.status for a in signal_log.agents] == ["idle"]


def test_fail_a_finished_task_is_a_conflict_and_announces_nothing(daemon, make, agent, signal_log):
    task = make.task(agent, status="completed", completed_at=Now())
    before = snapshot()

    response = daemon.post(f"tasks/{task.id}/fail", {"error": "too late"})

    assert (response.status_code, response.json()) == (
        409,
        {"error": "task is completed, not dispatched or running"},
    )
    assert snapshot() == before
    assert signal_log.tasks_failed == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "error: required string"),
        ({"error": ""}, "error: must not be empty"),
        ({"error": "x" * 10_001}, "error: longer than 10000 characters"),
    ],
)
def test_fail_without_an_error_is_a_bad_request(daemon, make, agent, body, message):
    task = make.task(agent, status="running")
    before = snapshot()

    response = daemon.post(f"tasks/{task.id}/fail", body)

    assert (response.status_code, response.json()) == (400, {"error": message})
    assert snapshot() == before


@pytest.mark.parametrize(
    ("action", "body"),
    [("start", None), ("complete", {"result": {}}), ("fail", {"error": "x"})],
)
def test_moves_on_another_workspaces_task_look_like_no_task(daemon, make, action, body):
    theirs = make.task(make.agent(make.runtime(make.workspace("other"))), status="running")
    before = snapshot()

    foreign = daemon.post(f"tasks/{theirs.id}/{action}", body)
    unknown = daemon.post(f"tasks/{uuid.uuid4()}/{action}", body)
    garbage = daemon.post(f"tasks/123/{action}", body)

    assert {(r.status_code, r.content) for r in (foreign, unknown, garbage)} == {
        (404, b'{"error": "task not found"}')
    }
    assert snapshot() == before


# --- status -----------------------------------------------------------------------------------


def test_status_tells_a_daemon_the_sweeper_failed_its_task(daemon, make, agent):
    task = make.task(agent, status="failed", failure_reason="runtime_offline")

    response = daemon.get(f"tasks/{task.id}/status")

    assert (response.status_code, response.json()) == (200, {"status": "failed"})


def test_status_of_another_workspaces_task_is_not_found(daemon, make):
    theirs = make.task(make.agent(make.runtime(make.workspace("other"))))

    assert daemon.get(f"tasks/{theirs.id}/status").status_code == 404
    assert daemon.get(f"tasks/{uuid.uuid4()}/status").status_code == 404
    assert daemon.post(f"tasks/{theirs.id}/status").status_code == 405


def test_task_endpoints_need_a_live_token(daemon, make, agent):
    task = make.task(agent, status="dispatched")

    response = daemon.post(f"tasks/{task.id}/start", token="mdt_wrong")

    assert response.status_code == 401
    assert AgentTask.objects.get(id=task.id).status == "dispatched"
