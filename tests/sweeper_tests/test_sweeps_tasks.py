"""spec §2, sweep_stale_tasks: both timeouts on both sides, on the database clock."""

from datetime import timedelta

import pytest
from django.db import transaction

from runtimes.models import Agent
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db

DISPATCH_TIMEOUT = timedelta(seconds=300)
RUNNING_TIMEOUT = timedelta(seconds=9000)


def sweep(**kwargs):
    return sweep_stale_tasks(
        rules=Rules(dispatch_timeout=DISPATCH_TIMEOUT, running_timeout=RUNNING_TIMEOUT), **kwargs
    )


@pytest.mark.parametrize(
    ("status", "age", "fails"),
    [
        ("dispatched", 10, False),
        ("dispatched", 299, False),
        ("dispatched", 301, True),
        ("running", 301, False),
        ("running", 8999, False),
        ("running", 9001, True),
        ("queued", 100_000, False),
        ("completed", 100_000, False),
        ("failed", 100_000, False),
        ("cancelled", 100_000, False),
    ],
)
def test_tasks_fail_only_past_the_timeout_of_their_state(make, status, age, fails):
    task = make.task(status=status, age=age)

    result = sweep()

    task.refresh_from_db()
    assert [t.id for t in result.tasks_failed] == ([task.id] if fails else [])
    assert task.status == ("failed" if fails else status)
    if fails:
        assert (task.failure_reason, task.error) == ("timeout", "task timed out")
        assert task.completed_at is not None


def test_a_running_task_is_timed_by_its_start_not_its_dispatch(make):
    # Dispatched long ago, started just now: within the running budget.
    task = make.task(status="running", dispatched_at=seconds_ago(10_000), age=60)

    assert sweep().tasks_failed == []
    task.refresh_from_db()
    assert task.status == "running"


def test_stuck_tasks_fail_even_on_a_healthy_runtime(make):
    healthy = make.runtime(seen_ago=1)
    task = make.task(make.agent(healthy), status="running", age=9001)

    assert [t.id for t in sweep().tasks_failed] == [task.id]
    assert [r.id for r in sweep().runtimes_marked_offline] == []


def test_agent_reconciled_once_its_last_stuck_task_fails(make):
    agent = make.agent(status="working")
    make.task(agent, status="dispatched", age=301)

    result = sweep()

    assert Agent.objects.get(pk=agent.pk).status == "idle"
    assert [a.id for a in result.agents_changed] == [agent.id]


def test_agent_with_other_live_work_stays_working(make):
    agent = make.agent(status="working")
    make.task(agent, status="dispatched", age=301)
    make.task(agent, status="running", age=10)

    assert sweep().agents_changed == []
    assert Agent.objects.get(pk=agent.pk).status == "working"


def test_signals_name_the_workspace_and_fire_once(
    make, signal_log, django_capture_on_commit_callbacks
):
    task = make.task(status="running", age=9001)

    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    with django_capture_on_commit_callbacks(execute=True):
        sweep()

    (failed,) = signal_log.tasks_failed
    assert failed.id == task.id
    assert failed.workspace_id == task.runtime.workspace_id
    assert failed.failure_reason == "timeout"


def test_a_rolled_back_sweep_changes_and_signals_nothing(
    make, signal_log, django_capture_on_commit_callbacks
):
    task = make.task(status="running", age=9001)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert sweep().tasks_failed
        transaction.set_rollback(True)

    assert signal_log.tasks_failed == []
    assert AgentTask.objects.get(pk=task.pk).status == "running"
