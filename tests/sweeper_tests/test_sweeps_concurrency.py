"""Sweeps racing each other, heartbeats and completions, for real: threads on their own
PostgreSQL connections, committed data (transactional tests)."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models.functions import Now

from runtimes.models import Agent, AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.threads import held_open, in_thread, together, wait_for_lock_wait

pytestmark = pytest.mark.django_db(transaction=True)

STALE_AFTER = timedelta(seconds=45)
# Outages of 60 and 120 runtimes at once: with no floor for the brake they would engage it.
RULES = Rules(stale_after=STALE_AFTER, brake_min_runtimes=1_000_000)


def outage(make, runtimes: int, tasks_each: int = 2):
    workspaces = [make.workspace(f"ws{i}") for i in range(3)]
    for i in range(runtimes):
        agent = make.agent(make.runtime(workspaces[i % 3], seen_ago=600), status="working")
        for status in ["dispatched", "running"][:tasks_each]:
            make.task(agent, status=status, age=10_000)


def test_concurrent_runtime_sweeps_change_and_signal_each_row_once(make, signal_log):
    outage(make, runtimes=120)

    results = together(*[lambda: sweep_stale_runtimes(rules=RULES, chunk_size=7)] * 4)

    marked = Counter(r.id for res in results for r in res.runtimes_marked_offline)
    failed = Counter(t.id for res in results for t in res.tasks_failed)
    idled = Counter(a.id for res in results for a in res.agents_changed)
    assert (len(marked), len(failed), len(idled)) == (120, 240, 120)
    assert max(marked.values()) == max(failed.values()) == max(idled.values()) == 1
    assert Counter(r.id for r in signal_log.runtimes_offline) == marked
    assert Counter(t.id for t in signal_log.tasks_failed) == failed
    assert Counter(a.id for a in signal_log.agents) == idled
    assert not AgentTask.objects.filter(status__in=["dispatched", "running"]).exists()
    assert not Agent.objects.filter(status="working").exists()


def test_runtime_and_task_sweeps_racing_fail_each_task_once(make, signal_log):
    # Every task is both on a stale runtime and past its timeout: either sweep may take it.
    outage(make, runtimes=60)

    def runtimes():
        return sweep_stale_runtimes(rules=RULES, chunk_size=5)

    def tasks():
        timeout = timedelta(seconds=300)
        return sweep_stale_tasks(
            rules=Rules(
                dispatch_timeout=timeout, running_timeout=timeout, brake_min_runtimes=1_000_000
            ),
            chunk_size=5,
        )

    results = together(runtimes, tasks, runtimes, tasks)

    failed = Counter(t.id for res in results for t in res.tasks_failed)
    assert len(failed) == 120
    assert max(failed.values()) == 1
    assert Counter(t.id for t in signal_log.tasks_failed) == failed
    assert Counter(a.id for a in signal_log.agents) == Counter(
        a.id for res in results for a in res.agents_changed
    )
    assert not Agent.objects.filter(status="working").exists()


def test_chunks_commit_one_after_another(make, signal_log):
    for _ in range(25):
        make.runtime(seen_ago=600)
    seen_by_others = []

    def count_offline_from_another_connection():
        thread, out = in_thread(lambda: AgentRuntime.objects.filter(status="offline").count())
        thread.join()
        seen_by_others.append(out[0])

    def after_each_commit(sender, runtimes, **kwargs):
        transaction.on_commit(count_offline_from_another_connection)

    from runtimes.signals import runtimes_went_offline

    runtimes_went_offline.connect(after_each_commit, weak=False)
    try:
        result = sweep_stale_runtimes(rules=RULES, chunk_size=10)
    finally:
        runtimes_went_offline.disconnect(after_each_commit)

    assert len(result.runtimes_marked_offline) == 25
    assert seen_by_others == [10, 20, 25]  # each chunk visible to others as soon as it is done


def heartbeat(runtime_id) -> int:
    return AgentRuntime.objects.filter(pk=runtime_id).update(
        status="online", last_seen_at=Now(), offline_at=None
    )


def test_heartbeat_in_flight_keeps_its_runtime_online(make, signal_log):
    runtime = make.runtime(seen_ago=600)
    with held_open(heartbeat, runtime.id):
        result = sweep_stale_runtimes(rules=RULES)

    assert result.runtimes_marked_offline == []
    assert signal_log.runtimes_offline == []
    assert AgentRuntime.objects.get(pk=runtime.pk).status == "online"


def test_heartbeat_after_the_sweep_locked_its_runtime_brings_it_back(make, signal_log):
    runtime = make.runtime(seen_ago=600)
    with held_open(sweep_stale_runtimes, rules=RULES) as sweep_out:
        beat, beat_out = in_thread(heartbeat, runtime.id)
        wait_for_lock_wait()  # the heartbeat now waits on the sweep's row lock
        assert beat.is_alive()
    beat.join(10)

    assert [r.id for r in sweep_out[0].runtimes_marked_offline] == [runtime.id]
    assert beat_out == [1]
    runtime.refresh_from_db()
    assert (runtime.status, runtime.offline_at) == ("online", None)
    assert [r.id for r in signal_log.runtimes_offline] == [runtime.id]


def complete(task_id) -> int:
    return AgentTask.objects.filter(pk=task_id, status="running").update(
        status="completed", completed_at=Now()
    )


def test_task_completing_during_a_sweep_stays_completed(make, signal_log):
    task = make.task(make.agent(make.runtime(seen_ago=600)), status="running")
    with held_open(complete, task.id):
        result = sweep_stale_runtimes(rules=RULES)
    again = sweep_stale_runtimes(rules=RULES)

    assert len(result.runtimes_marked_offline) == 1
    assert result.tasks_failed == again.tasks_failed == []
    assert signal_log.tasks_failed == []
    assert AgentTask.objects.get(pk=task.pk).status == "completed"


def test_completion_after_the_sweep_failed_the_task_changes_nothing(make, signal_log):
    task = make.task(make.agent(make.runtime(seen_ago=600)), status="running")
    with held_open(sweep_stale_runtimes, rules=RULES):
        done, done_out = in_thread(complete, task.id)
        wait_for_lock_wait()  # the completion now waits on the sweep's row lock
    done.join(10)

    assert done_out == [0]  # the guarded completion found the task no longer running
    assert AgentTask.objects.get(pk=task.pk).status == "failed"
    assert [t.id for t in signal_log.tasks_failed] == [task.id]


def test_a_task_skipped_while_locked_fails_on_the_next_sweep(make, signal_log):
    runtime = make.runtime(seen_ago=600)
    task = make.task(make.agent(runtime), status="running")
    lock_without_changing = AgentTask.objects.select_for_update().filter(pk=task.pk)
    with held_open(list, lock_without_changing):
        first = sweep_stale_runtimes(rules=RULES)
        pending_meanwhile = AgentRuntime.objects.get(pk=runtime.pk).work_pending
    second = sweep_stale_runtimes(rules=RULES)

    assert [r.id for r in first.runtimes_marked_offline] == [runtime.id]
    assert first.tasks_failed == []
    assert pending_meanwhile is True
    assert [t.id for t in second.tasks_failed] == [task.id]
    assert AgentRuntime.objects.get(pk=runtime.pk).work_pending is False
