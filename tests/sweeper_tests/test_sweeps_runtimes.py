"""spec §2, sweep_stale_runtimes: every rule against the real PostgreSQL and its clock."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.functions import Now

from runtimes.models import Agent, AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask

pytestmark = pytest.mark.django_db

STALE_AFTER = timedelta(seconds=45)


def sweep(**kwargs):
    return sweep_stale_runtimes(rules=Rules(stale_after=STALE_AFTER), **kwargs)


def db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("seen_ago", "goes_offline"),
    [(0, False), (30, False), (44, False), (46, True), (600, True), (None, False)],
    ids=["just-seen", "fresh", "just-inside", "just-past", "long-gone", "never-seen"],
)
def test_only_runtimes_unseen_past_the_threshold_go_offline(make, seen_ago, goes_offline):
    runtime = make.runtime(seen_ago=seen_ago)

    with transaction.atomic():  # one transaction, so now() below is the sweep's own
        result = sweep()
        now = db_now()

    runtime.refresh_from_db()
    assert [r.id for r in result.runtimes_marked_offline] == ([runtime.id] if goes_offline else [])
    if goes_offline:
        assert runtime.status == AgentRuntime.Status.OFFLINE
        assert runtime.offline_at == now
    else:
        assert runtime.status == AgentRuntime.Status.ONLINE
        assert runtime.offline_at is None


def test_staleness_is_judged_by_the_database_clock_not_the_app_servers(make, monkeypatch):
    fresh = make.runtime(seen_ago=5)
    stale = make.runtime(seen_ago=120)
    # An app server whose clock runs an hour fast (or slow) must not change the verdict.
    for skew in (timedelta(hours=1), -timedelta(hours=1)):
        monkeypatch.setattr("django.utils.timezone.now", lambda skew=skew: db_now() + skew)
        result = sweep()
        assert {r.id for r in result.runtimes_marked_offline} <= {stale.id}
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert (fresh.status, stale.status) == ("online", "offline")


def test_an_offline_runtime_is_not_marked_again(make, signal_log):
    runtime = make.runtime(seen_ago=600, status="offline")
    AgentRuntime.objects.filter(pk=runtime.pk).update(offline_at=Now() - timedelta(hours=1))
    runtime.refresh_from_db()

    result = sweep()

    assert result.runtimes_marked_offline == []
    assert signal_log.runtimes_offline == []
    assert AgentRuntime.objects.get(pk=runtime.pk).offline_at == runtime.offline_at


@pytest.mark.parametrize(
    ("task_status", "runtime_stale", "fails"),
    [
        ("queued", True, False),
        ("dispatched", True, True),
        ("running", True, True),
        ("completed", True, False),
        ("failed", True, False),
        ("cancelled", True, False),
        ("queued", False, False),
        ("dispatched", False, False),
        ("running", False, False),
    ],
)
def test_each_task_state_against_each_runtime_state(make, task_status, runtime_stale, fails):
    runtime = make.runtime(seen_ago=600 if runtime_stale else 5)
    task = make.task(make.agent(runtime), status=task_status)

    result = sweep()

    task.refresh_from_db()
    assert [t.id for t in result.tasks_failed] == ([task.id] if fails else [])
    assert task.status == ("failed" if fails else task_status)


def test_a_failed_task_says_why_and_when(make):
    task = make.task(make.agent(make.runtime(seen_ago=600)), status="running")

    result = sweep()

    task.refresh_from_db()
    assert (task.status, task.failure_reason, task.error) == (
        "failed",
        "runtime_offline",
        # The evidence: unseen 600 s, against a threshold of 45 s and no reconnect grace.
        "runtime went offline: no heartbeat for 600 s (stale 45 s + grace 0 s)",
    )
    assert task.completed_at is not None
    (failed,) = result.tasks_failed
    assert (failed.agent_id, failed.issue_id, failed.runtime_id) == (
        task.agent_id,
        task.issue_id,
        task.runtime_id,
    )
    assert failed.workspace_id == task.runtime.workspace_id


def test_tasks_of_a_runtime_already_offline_fail_on_every_sweep(
    make, signal_log, django_capture_on_commit_callbacks
):
    # Deregistered, so never marked by a sweep: the original left its tasks running forever.
    runtime = make.runtime(seen_ago=5, status="offline")
    task = make.task(make.agent(runtime), status="running")

    with django_capture_on_commit_callbacks(execute=True):
        result = sweep()

    assert result.runtimes_marked_offline == []
    assert [t.id for t in result.tasks_failed] == [task.id]
    assert signal_log.runtimes_offline == []
    assert [t.id for t in signal_log.tasks_failed] == [task.id]


def test_working_agent_left_without_work_becomes_idle(make):
    runtime = make.runtime(seen_ago=600)
    agent = make.agent(runtime, status="working")
    make.task(agent, status="running")

    result = sweep()

    agent.refresh_from_db()
    assert agent.status == "idle"
    assert [(a.id, a.status) for a in result.agents_changed] == [(agent.id, "idle")]


def test_agent_with_work_left_elsewhere_stays_working(make):
    agent = make.agent(make.runtime(seen_ago=600), status="working")
    make.task(agent, status="running")
    # The same agent also has a task on a healthy runtime of the workspace.
    healthy = make.runtime(agent.workspace, seen_ago=5)
    AgentTask.objects.create(
        agent=agent, runtime=healthy, issue_id=uuid.uuid4(), status="running", started_at=Now()
    )

    result = sweep()

    assert Agent.objects.get(pk=agent.pk).status == "working"
    assert result.agents_changed == []


@pytest.mark.parametrize("status", ["idle", "blocked", "error", "offline"])
def test_the_sweeper_sets_no_other_agent_status(make, status):
    agent = make.agent(make.runtime(seen_ago=600), status=status)
    make.task(agent, status="running")

    result = sweep()

    assert Agent.objects.get(pk=agent.pk).status == status
    assert result.agents_changed == []


def test_each_change_is_signalled_once_after_commit(
    make, signal_log, django_capture_on_commit_callbacks
):
    runtime = make.runtime(seen_ago=600)
    agent = make.agent(runtime, status="working")
    task = make.task(agent, status="dispatched")

    with django_capture_on_commit_callbacks(execute=True):
        sweep()
        assert signal_log.tasks_failed == []  # nothing is announced before commit
    with django_capture_on_commit_callbacks(execute=True):
        sweep()  # a second sweep finds nothing to change and announces nothing

    assert [r.id for r in signal_log.runtimes_offline] == [runtime.id]
    assert [t.id for t in signal_log.tasks_failed] == [task.id]
    assert [(a.id, a.status) for a in signal_log.agents] == [(agent.id, "idle")]


def test_a_rolled_back_sweep_changes_and_signals_nothing(
    make, signal_log, django_capture_on_commit_callbacks
):
    runtime = make.runtime(seen_ago=600)
    task = make.task(make.agent(runtime, status="working"), status="running")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert sweep()  # it did change rows, inside the transaction...
        transaction.set_rollback(True)  # ...which then fails

    assert (signal_log.runtimes_offline, signal_log.tasks_failed, signal_log.agents) == ([], [], [])
    assert AgentRuntime.objects.get(pk=runtime.pk).status == "online"
    assert AgentTask.objects.get(pk=task.pk).status == "running"


def test_a_runtime_marked_offline_has_no_work_left_pending(make):
    runtime = make.runtime(seen_ago=600)
    make.task(make.agent(runtime), status="running")

    sweep()

    assert AgentRuntime.objects.get(pk=runtime.pk).work_pending is False


def test_work_pending_on_an_offline_runtime_is_failed_then_cleared(make):
    runtime = make.runtime(seen_ago=5, status="offline")  # as a deregister leaves it
    task = make.task(make.agent(runtime), status="dispatched")
    assert runtime.work_pending is True

    assert [t.id for t in sweep().tasks_failed] == [task.id]
    assert AgentRuntime.objects.get(pk=runtime.pk).work_pending is False
    assert sweep().tasks_failed == []


def test_offline_runtimes_without_pending_work_are_not_revisited(make):
    # Only runtimes flagged as possibly holding work are looked at: an idle sweep after an
    # outage reads nothing of the runtimes that died long ago.
    runtime = make.runtime(seen_ago=600, status="offline")
    AgentRuntime.objects.filter(pk=runtime.pk).update(work_pending=False)
    task = make.task(make.agent(runtime), status="running")

    assert sweep().tasks_failed == []
    assert AgentTask.objects.get(pk=task.pk).status == "running"


def test_going_offline_by_any_path_leaves_work_pending_for_the_sweep(make):
    runtime = make.runtime(seen_ago=5)
    task = make.task(make.agent(runtime), status="running")
    AgentRuntime.objects.filter(pk=runtime.pk).update(work_pending=False)

    # Not a sweep, not a deregister: a writer that knows nothing of the flag.
    AgentRuntime.objects.filter(pk=runtime.pk).update(status="offline")

    assert AgentRuntime.objects.get(pk=runtime.pk).work_pending is True
    assert [t.id for t in sweep().tasks_failed] == [task.id]


def test_a_runtime_is_announced_offline_before_its_tasks_and_agents(
    make, django_capture_on_commit_callbacks
):
    from runtimes.signals import agents_status_changed, runtimes_went_offline
    from tasks.signals import tasks_failed

    make.task(make.agent(make.runtime(seen_ago=600), status="working"), status="running")
    order = []
    receivers = {
        runtimes_went_offline: lambda **kw: order.append("runtime offline"),
        tasks_failed: lambda **kw: order.append("task failed"),
        agents_status_changed: lambda **kw: order.append("agent idle"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sweep()
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)

    assert order == ["runtime offline", "task failed", "agent idle"]


@pytest.mark.parametrize("stale", [6, 7, 9], ids=["exact-chunks", "short-last-chunk", "one-over"])
def test_chunks_take_every_stale_runtime_seen_or_never_seen(make, stale):
    # Chunks of 3: a last chunk that marks fewer than 3 ends the sweep, one that marks 3 does
    # not; never-seen runtimes fill the chunks the seen ones leave short.
    never_seen = [make.runtime(seen_ago=None) for _ in range(2)]
    AgentRuntime.objects.filter(pk__in=[r.pk for r in never_seen]).update(
        created_at=Now() - timedelta(seconds=600)
    )
    seen = [make.runtime(seen_ago=600) for _ in range(stale - 2)]
    fresh = make.runtime(seen_ago=5)

    result = sweep(chunk_size=3)

    assert sorted(r.id for r in result.runtimes_marked_offline) == sorted(
        r.id for r in never_seen + seen
    )
    assert AgentRuntime.objects.get(pk=fresh.pk).status == AgentRuntime.Status.ONLINE
    assert not AgentRuntime.objects.filter(status="online").exclude(pk=fresh.pk).exists()
