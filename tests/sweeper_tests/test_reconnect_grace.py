"""The reconnect grace: a runtime goes offline at the stale threshold, announced at once, but
its tasks fail only after it has been offline for the grace; a comeback keeps them."""

from datetime import timedelta

import pytest

from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.models import SweeperState
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db

RULES = Rules(stale_after=timedelta(seconds=45), reconnect_grace=timedelta(seconds=300))


def offline_for(runtime, seconds: float) -> None:
    AgentRuntime.objects.filter(pk=runtime.pk).update(offline_at=seconds_ago(seconds))


@pytest.fixture
def dying(make):
    runtime = make.runtime(seen_ago=60)
    return runtime, make.task(make.agent(runtime, status="working"), status="running")


def test_a_stale_runtime_goes_offline_at_once_and_its_tasks_wait_out_the_grace(
    dying, signal_log, django_capture_on_commit_callbacks
):
    runtime, task = dying
    with django_capture_on_commit_callbacks(execute=True):
        result = sweep_stale_runtimes(rules=RULES)

    assert [r.id for r in result.runtimes_marked_offline] == [runtime.id]
    assert [r.id for r in signal_log.runtimes_offline] == [runtime.id]
    assert result.tasks_failed == []
    assert AgentTask.objects.get(pk=task.pk).status == "running"


@pytest.mark.parametrize(("offline_seconds", "fails"), [(299, False), (301, True)])
def test_the_tasks_fail_once_offline_for_the_grace_with_the_evidence(dying, offline_seconds, fails):
    runtime, task = dying
    sweep_stale_runtimes(rules=RULES)
    offline_for(runtime, offline_seconds)
    AgentRuntime.objects.filter(pk=runtime.pk).update(last_seen_at=seconds_ago(352))

    failed = sweep_stale_runtimes(rules=RULES).tasks_failed

    assert [t.id for t in failed] == ([task.id] if fails else [])
    if fails:
        task.refresh_from_db()
        assert (task.failure_reason, task.error) == (
            "runtime_offline",
            "runtime went offline: no heartbeat for 352 s (stale 45 s + grace 300 s)",
        )


def test_a_heartbeat_within_the_grace_brings_it_back_with_its_tasks(
    dying, signal_log, django_capture_on_commit_callbacks
):
    runtime, task = dying
    sweep_stale_runtimes(rules=RULES)
    offline_for(runtime, 200)
    daemon = DaemonClient(runtime.workspace, commits=django_capture_on_commit_callbacks)

    response = daemon.post("heartbeat", {"runtime_id": str(runtime.id)})
    offline_for(runtime, 400)  # no effect any more: it is online
    sweep_stale_runtimes(rules=RULES)

    assert response.status_code == 200
    assert AgentRuntime.objects.get(pk=runtime.pk).status == "online"
    assert AgentTask.objects.get(pk=task.pk).status == "running"
    assert [action for action, _ in signal_log.runtimes_changed] == ["online"]


def test_a_deregistered_runtimes_tasks_fail_at_the_next_sweep(make):
    runtime = make.runtime(seen_ago=1)
    task = make.task(make.agent(runtime), status="running")
    DaemonClient(runtime.workspace).post("deregister", {"runtime_ids": [str(runtime.id)]})

    (failed,) = sweep_stale_runtimes(rules=RULES).tasks_failed

    assert failed.id == task.id
    assert failed.error == "runtime deregistered by its daemon"


def test_a_deregistered_runtimes_tasks_fail_even_while_the_platform_is_blind(make):
    runtime = make.runtime(seen_ago=1)
    task = make.task(make.agent(runtime), status="running")
    DaemonClient(runtime.workspace).post("deregister", {"runtime_ids": [str(runtime.id)]})
    SweeperState.objects.create(runtimes_swept_at=seconds_ago(600))  # a blind gap

    assert [t.id for t in sweep_stale_runtimes(rules=RULES).tasks_failed] == [task.id]


def test_while_blind_the_grace_of_an_offline_runtime_does_not_run_out(dying):
    runtime, task = dying
    sweep_stale_runtimes(rules=RULES)
    offline_for(runtime, 400)
    SweeperState.objects.filter(id=1).update(runtimes_swept_at=seconds_ago(100))

    assert sweep_stale_runtimes(rules=RULES).tasks_failed == []  # hears again from now
    SweeperState.objects.filter(id=1).update(heard_since=seconds_ago(301))
    assert [t.id for t in sweep_stale_runtimes(rules=RULES).tasks_failed] == [task.id]


def test_claims_still_refuse_an_offline_runtime_within_the_grace(dying):
    runtime, _ = dying
    sweep_stale_runtimes(rules=RULES)

    response = DaemonClient(runtime.workspace).post(f"runtimes/{runtime.id}/tasks/claim")

    assert response.status_code == 409
