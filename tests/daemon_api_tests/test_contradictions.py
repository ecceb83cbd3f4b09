"""Contradicted verdicts: a daemon's report on a task the sweeper already failed, and a
heartbeat from a runtime the sweeper marked offline, are kept and counted; neither undoes the
verdict (the daemon still gets its 409, and must stop)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.models import SweeperState
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db

RULES = Rules(stale_after=timedelta(seconds=45), reconnect_grace=timedelta(0))


@pytest.fixture
def failed_by_the_sweeper(daemon, make):
    runtime = make.runtime(daemon.workspace, seen_ago=60)
    task = make.task(make.agent(runtime), status="running")
    sweep_stale_runtimes(rules=RULES)
    assert AgentTask.objects.get(pk=task.pk).failure_reason == "runtime_offline"
    return task


def sweep_report() -> dict:
    out = StringIO()
    call_command("sweep", "--json", "--dry-run", stdout=out)
    return json.loads(out.getvalue())["contradicted"]


@pytest.mark.parametrize(
    ("move", "body", "report"),
    [
        (
            "complete",
            {"result": {"summary": "done"}},
            {"status": "completed", "result": {"summary": "done"}},
        ),
        ("fail", {"error": "model refused"}, {"status": "failed", "error": "model refused"}),
    ],
)
def test_a_report_on_a_task_the_sweeper_failed_is_kept_and_still_refused(
    daemon, failed_by_the_sweeper, move, body, report
):
    task = failed_by_the_sweeper

    response = daemon.post(f"tasks/{task.id}/{move}", body)

    assert (response.status_code, response.json()["error"]) == (
        409,
        f"task is failed, not {'running' if move == 'complete' else 'dispatched or running'}",
    )
    task.refresh_from_db()
    assert (task.status, task.failure_reason) == ("failed", "runtime_offline")
    assert task.contradicted_at is not None
    assert task.contradicting_report == report
    assert sweep_report()["tasks"] == 1


def test_only_the_first_report_is_kept(daemon, failed_by_the_sweeper):
    task = failed_by_the_sweeper
    daemon.post(f"tasks/{task.id}/complete", {"result": {"n": 1}})
    first = AgentTask.objects.get(pk=task.pk).contradicted_at

    daemon.post(f"tasks/{task.id}/fail", {"error": "later"})

    task.refresh_from_db()
    assert (task.contradicted_at, task.contradicting_report) == (
        first,
        {"status": "completed", "result": {"n": 1}},
    )
    assert sweep_report()["tasks"] == 1


def test_a_report_on_a_task_the_daemon_itself_failed_is_no_contradiction(daemon, make):
    task = make.task(make.agent(make.runtime(daemon.workspace)), status="running")
    assert daemon.post(f"tasks/{task.id}/fail", {"error": "crashed"}).status_code == 200

    assert daemon.post(f"tasks/{task.id}/complete", {"result": {}}).status_code == 409

    assert AgentTask.objects.get(pk=task.pk).contradicted_at is None
    assert sweep_report()["tasks"] == 0


def heartbeat(daemon, runtime):
    return daemon.post("heartbeat", {"runtime_id": str(runtime.id)})


@pytest.mark.parametrize(
    ("offline_seconds", "counted"), [(100, True), (400, False)], ids=["within", "after"]
)
def test_a_comeback_within_the_grace_is_a_contradicted_runtime_verdict(
    daemon, make, settings, offline_seconds, counted
):
    settings.RUNTIME_RECONNECT_GRACE_SECONDS = 300
    runtime = make.runtime(daemon.workspace, seen_ago=60)
    sweep_stale_runtimes(rules=RULES)
    AgentRuntime.objects.filter(pk=runtime.pk).update(offline_at=seconds_ago(offline_seconds))

    assert heartbeat(daemon, runtime).status_code == 200
    assert heartbeat(daemon, runtime).status_code == 200  # online now: nothing more to count

    assert SweeperState.objects.get().contradicted_runtimes == (1 if counted else 0)
    assert sweep_report()["runtimes"] == (1 if counted else 0)


def test_a_deregistered_runtimes_comeback_contradicts_nothing(daemon, make, settings):
    settings.RUNTIME_RECONNECT_GRACE_SECONDS = 300
    runtime = make.runtime(daemon.workspace)
    daemon.post("deregister", {"runtime_ids": [str(runtime.id)]})

    assert heartbeat(daemon, runtime).status_code == 200

    assert sweep_report()["runtimes"] == 0
