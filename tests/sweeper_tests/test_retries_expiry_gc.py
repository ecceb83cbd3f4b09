"""The retry budget, queued expiry and the collection of long-offline runtimes: every rule,
both sides of every threshold, against the real PostgreSQL and its clock."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import collect_offline_runtimes, sweep_stale_runtimes, sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago
from tests.helpers.threads import held_open, together

pytestmark = pytest.mark.django_db

RULES = Rules(max_attempts=2, queued_ttl=timedelta(seconds=7200), gc_after=timedelta(days=7))


def retry_of(task) -> AgentTask | None:
    return AgentTask.objects.filter(retry_of=task).first()


# --- retries -------------------------------------------------------------------------------


def test_a_task_the_sweeper_fails_is_queued_again_as_its_next_attempt(make, signal_log):
    task = make.task(make.agent(make.runtime(seen_ago=60)), status="running", priority=3)

    (failed,) = sweep_stale_runtimes(rules=RULES).tasks_failed

    retry = retry_of(task)
    assert (retry.status, retry.attempt, retry.priority) == ("queued", 2, 3)
    assert (retry.agent_id, retry.runtime_id, retry.issue_id) == (
        task.agent_id,
        task.runtime_id,
        task.issue_id,
    )
    assert failed.retry_task_id == retry.id
    assert AgentTask.objects.get(pk=task.pk).status == "failed"  # the attempt stays history


def test_the_last_attempt_is_not_retried(make):
    agent = make.agent(make.runtime(seen_ago=60))
    last = make.task(agent, status="dispatched", attempt=2)

    (failed,) = sweep_stale_runtimes(rules=RULES).tasks_failed

    assert failed.retry_task_id is None
    assert retry_of(last) is None


def test_a_tasks_own_budget_wins_over_the_default(make):
    task = make.task(
        make.agent(make.runtime(seen_ago=60)), status="running", max_attempts=5, attempt=4
    )

    sweep_stale_runtimes(rules=RULES)

    assert retry_of(task).attempt == 5


def test_in_one_chunk_only_the_failures_with_budget_left_are_retried(make):
    agent = make.agent(make.runtime(seen_ago=60))
    first = make.task(agent, status="running")
    last = make.task(agent, status="dispatched", attempt=2)
    own_budget = make.task(agent, status="running", attempt=2, max_attempts=3)
    spent_own = make.task(agent, status="running", attempt=1, max_attempts=1)

    failed = {t.id: t for t in sweep_stale_runtimes(rules=RULES).tasks_failed}

    retried = {t.id for t in (first, last, own_budget, spent_own) if retry_of(t)}
    assert retried == {first.id, own_budget.id}
    assert {i for i, t in failed.items() if t.retry_task_id} == retried


def test_failures_without_budget_run_no_retry_statement(make):
    agent = make.agent(make.runtime(seen_ago=60))
    make.task(agent, status="running", attempt=2)

    with CaptureQueriesContext(connection) as queries:
        (failed,) = sweep_stale_runtimes(rules=RULES).tasks_failed

    assert failed.retry_task_id is None
    assert not [q for q in queries if "retry_of_id" in q["sql"]]


@pytest.mark.parametrize("reason", ["timeout", "orphaned"])
def test_timeouts_and_orphans_are_retried_too(make, reason):
    agent = make.agent(make.runtime())
    if reason == "timeout":
        task = make.task(agent, status="dispatched", age=301)
    else:
        task = make.task(agent, status="running", age=60, unlisted_since=seconds_ago(60))

    (failed,) = sweep_stale_tasks(rules=RULES).tasks_failed

    assert failed.failure_reason == reason
    assert failed.retry_task_id == retry_of(task).id


def test_a_daemons_own_failure_is_not_retried(daemon, make):
    task = make.task(make.agent(make.runtime(daemon.workspace)), status="running")

    daemon.post(f"tasks/{task.id}/fail", {"error": "model refused"})

    assert retry_of(task) is None


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_retry_each_failure_once(make):
    agent = make.agent(make.runtime(seen_ago=60))
    tasks = [make.task(agent, status="running") for _ in range(40)]

    together(*[lambda: sweep_stale_runtimes(rules=RULES, chunk_size=7)] * 2)

    retries = AgentTask.objects.filter(retry_of__in=tasks)
    assert sorted(r.retry_of_id for r in retries) == sorted(t.id for t in tasks)


# --- queued expiry -------------------------------------------------------------------------


@pytest.mark.parametrize(("queued_seconds", "expires"), [(7199, False), (7201, True)])
def test_a_task_queued_past_the_ttl_expires_unretried(make, signal_log, queued_seconds, expires):
    task = make.task(make.agent(make.runtime()), status="queued")
    AgentTask.objects.filter(pk=task.pk).update(created_at=seconds_ago(queued_seconds))

    failed = sweep_stale_tasks(rules=RULES).tasks_failed

    assert [(t.id, t.failure_reason) for t in failed] == (
        [(task.id, "queued_expired")] if expires else []
    )
    if expires:
        task.refresh_from_db()
        assert task.error == "queued for 7201 s and never claimed (ttl 7200 s)"
        assert retry_of(task) is None


@pytest.mark.django_db(transaction=True)
def test_a_claim_in_flight_keeps_its_task_from_expiring(make):
    runtime = make.runtime()
    task = make.task(make.agent(runtime), status="queued")
    AgentTask.objects.filter(pk=task.pk).update(created_at=seconds_ago(8000))
    claim = AgentTask.objects.select_for_update().filter(pk=task.pk)

    with held_open(list, claim):  # a claim holding the task row
        assert sweep_stale_tasks(rules=RULES).tasks_failed == []
    assert AgentTask.objects.get(pk=task.pk).status == "queued"


# --- never seen ----------------------------------------------------------------------------


@pytest.mark.parametrize(("made_seconds", "offline"), [(40, False), (50, True)])
def test_a_runtime_never_seen_is_judged_by_when_it_was_made(make, made_seconds, offline):
    runtime = make.runtime(seen_ago=None)
    AgentRuntime.objects.filter(pk=runtime.pk).update(created_at=seconds_ago(made_seconds))

    marked = sweep_stale_runtimes(rules=RULES).runtimes_marked_offline

    assert [r.id for r in marked] == ([runtime.id] if offline else [])


# --- collection of long-offline runtimes ---------------------------------------------------


def gone(make, *, days: float, **fields):
    runtime = make.runtime(seen_ago=days * 86400, status="offline", **fields)
    AgentRuntime.objects.filter(pk=runtime.pk).update(
        offline_at=seconds_ago(days * 86400), work_pending=False
    )
    return runtime


def test_a_runtime_offline_past_the_limit_is_collected_and_its_history_stays(make, signal_log):
    runtime = gone(make, days=8)
    agent = make.agent(make.runtime(runtime.workspace))  # the agent moved to another runtime
    history = make.task(agent, status="completed")
    AgentTask.objects.filter(pk=history.pk).update(runtime=runtime)  # done on the old runtime

    collected = collect_offline_runtimes(rules=RULES)

    assert [r.id for r in collected] == [runtime.id]
    assert not AgentRuntime.objects.filter(pk=runtime.pk).exists()
    history.refresh_from_db()
    assert (history.status, history.runtime_id, history.agent_id) == ("completed", None, agent.id)


@pytest.mark.parametrize(
    "keeps",
    ["younger", "an agent bound", "a queued task", "a running task"],
)
def test_a_runtime_is_kept_while_anything_may_still_need_it(make, keeps):
    runtime = gone(make, days=6 if keeps == "younger" else 8)
    if keeps != "younger":
        agent = make.agent(runtime)
        if keeps != "an agent bound":
            make.task(agent, status="queued" if keeps == "a queued task" else "running")
            # The agent moved on; its task was left on the old runtime.
            agent.runtime = make.runtime(runtime.workspace)
            agent.save()

    assert collect_offline_runtimes(rules=RULES) == []
    assert AgentRuntime.objects.filter(pk=runtime.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_runtime_held_by_a_heartbeat_is_not_collected(make):
    runtime = gone(make, days=8)
    hold = AgentRuntime.objects.select_for_update().filter(pk=runtime.pk)

    with held_open(list, hold):
        assert collect_offline_runtimes(rules=RULES) == []
    assert [r.id for r in collect_offline_runtimes(rules=RULES)] == [runtime.id]


def test_each_run_reads_a_bounded_part_and_the_next_goes_on_from_there(make):
    runtimes = [gone(make, days=8 + i) for i in range(5)]

    first = collect_offline_runtimes(rules=RULES, scan=2)
    second = collect_offline_runtimes(rules=RULES, scan=2)
    third = collect_offline_runtimes(rules=RULES, scan=2)

    assert [len(first), len(second), len(third)] == [2, 2, 1]
    assert not AgentRuntime.objects.filter(pk__in=[r.pk for r in runtimes]).exists()


def test_collection_is_announced_as_runtime_gc(
    make, signal_log, django_capture_on_commit_callbacks
):
    runtime = gone(make, days=8)

    with django_capture_on_commit_callbacks(execute=True):
        collect_offline_runtimes(rules=RULES)

    assert [(action, r.id) for action, r in signal_log.runtimes_changed] == [
        ("runtime_gc", runtime.id)
    ]
