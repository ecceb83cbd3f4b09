"""sweeper/guards.py, blindness is not silence: time the platform could not hear counts against
no runtime and no task. Thresholds small, the clock the database's."""

import logging
from datetime import timedelta

import pytest

from runtimes import fleet as runtime_fleet
from runtimes.models import AgentRuntime
from sweeper import state as sweeper_state
from sweeper.config import Rules
from sweeper.models import SweeperState
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.db import db_now, seconds_ago

pytestmark = pytest.mark.django_db

RULES = Rules(
    stale_after=timedelta(seconds=45),
    heartbeat_period=timedelta(seconds=15),
    reconnect_grace=timedelta(seconds=120),
    brake_min_runtimes=5,
)


def recorded_sweep(ago: float, **fields) -> None:
    """The state the last successful sweeps left, `ago` seconds ago by the database clock."""
    SweeperState.objects.update_or_create(
        id=1,
        defaults={"runtimes_swept_at": seconds_ago(ago), "tasks_swept_at": seconds_ago(ago)}
        | fields,
    )


def state() -> SweeperState:
    return SweeperState.objects.get()


def statuses(*runtimes) -> list[str]:
    return [AgentRuntime.objects.get(pk=r.pk).status for r in runtimes]


def fleet(make, workspace, count: int, seen_ago: float) -> list:
    return [make.runtime(workspace, seen_ago=seen_ago) for _ in range(count)]


def other_sweep_between_read_and_record(monkeypatch, record) -> None:
    """The other sweep (both run on one schedule, at once) does `record` just after this
    sweep's first read of the state, before this sweep's own guarded write."""
    read = sweeper_state.read

    def read_then_the_other_sweep_records():
        found = read()
        monkeypatch.setattr(sweeper_state, "read", read)
        assert record()
        return found

    monkeypatch.setattr(sweeper_state, "read", read_then_the_other_sweep_records)


# --- sweeper continuity ---------------------------------------------------------------------


def test_with_no_sweep_recorded_nothing_is_inferred_and_the_stale_go_offline(make):
    stale = make.runtime(seen_ago=60)

    result = sweep_stale_runtimes(rules=RULES)

    assert [r.id for r in result.runtimes_marked_offline] == [stale.id]
    assert state().heard_since is None
    assert state().runtimes_swept_at is not None


def test_a_gap_since_the_last_sweep_longer_than_stale_is_blind(make, caplog):
    recorded_sweep(ago=100)  # beat, worker or database down for 100 s
    stale = make.runtime(seen_ago=60)

    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        result = sweep_stale_runtimes(rules=RULES)

    assert result.runtimes_marked_offline == []
    assert statuses(stale) == ["online"]
    assert state().heard_since is not None
    assert [r.getMessage() for r in caplog.records] == ["sweeper.blind_gap"]


def test_after_a_gap_every_runtime_gets_the_full_threshold_from_the_moment_it_hears_again(make):
    recorded_sweep(ago=100)
    stale = make.runtime(seen_ago=600)
    sweep_stale_runtimes(rules=RULES)  # finds the gap: hears again from now
    SweeperState.objects.update(heard_since=seconds_ago(44))

    assert sweep_stale_runtimes(rules=RULES).runtimes_marked_offline == []

    SweeperState.objects.update(heard_since=seconds_ago(46))
    marked = sweep_stale_runtimes(rules=RULES).runtimes_marked_offline
    assert [r.id for r in marked] == [stale.id]


def test_a_gap_the_other_sweep_records_first_is_blind_for_this_sweep_too(make, monkeypatch):
    recorded_sweep(ago=100)
    stale = make.runtime(seen_ago=60)
    other_sweep_between_read_and_record(
        monkeypatch, lambda: sweeper_state.heard_after_gap(stale_after=RULES.stale_after)
    )

    assert sweep_stale_runtimes(rules=RULES).runtimes_marked_offline == []
    assert statuses(stale) == ["online"]


def test_a_gap_shorter_than_stale_is_not_blind(make):
    recorded_sweep(ago=40)
    stale = make.runtime(seen_ago=60)

    assert [r.id for r in sweep_stale_runtimes(rules=RULES).runtimes_marked_offline] == [stale.id]
    assert state().heard_since is None


def test_one_gap_is_recorded_once_however_many_sweeps_find_it(make):
    recorded_sweep(ago=100)
    sweep_stale_tasks(rules=RULES)
    heard = state().heard_since

    sweep_stale_runtimes(rules=RULES)

    assert state().heard_since == heard


def test_no_task_times_out_on_time_the_platform_could_not_hear(make):
    recorded_sweep(ago=400)
    rules = Rules(dispatch_timeout=timedelta(seconds=300), stale_after=timedelta(seconds=45))
    task = make.task(status="dispatched", age=350)

    assert sweep_stale_tasks(rules=rules).tasks_failed == []
    SweeperState.objects.update(heard_since=seconds_ago(301))
    assert [t.id for t in sweep_stale_tasks(rules=rules).tasks_failed] == [task.id]
    assert AgentTask.objects.get(pk=task.pk).failure_reason == "timeout"


# --- fleet silence --------------------------------------------------------------------------


def test_a_silent_fleet_is_blind_and_marks_no_one(make, caplog):
    workspace = make.workspace()
    # Nobody heard for 20 s (more than a heartbeat period), one runtime past stale.
    quiet = fleet(make, workspace, 5, seen_ago=20)
    stale = make.runtime(workspace, seen_ago=60)
    task = make.task(make.agent(stale), status="running")

    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        result = sweep_stale_runtimes(rules=RULES)

    assert not result
    assert statuses(stale, *quiet) == ["online"] * 6
    assert AgentTask.objects.get(pk=task.pk).status == "running"
    assert state().silent_after is not None
    assert "sweeper.fleet_silent" in [r.getMessage() for r in caplog.records]


def test_a_fleet_of_fewer_than_the_minimum_is_judged_as_usual(make):
    workspace = make.workspace()
    fleet(make, workspace, 3, seen_ago=20)
    stale = make.runtime(workspace, seen_ago=60)

    marked = sweep_stale_runtimes(rules=RULES).runtimes_marked_offline

    assert [r.id for r in marked] == [stale.id]


def test_a_fleet_that_beats_is_not_silent(make):
    workspace = make.workspace()
    fleet(make, workspace, 5, seen_ago=5)
    stale = make.runtime(workspace, seen_ago=60)

    assert [r.id for r in sweep_stale_runtimes(rules=RULES).runtimes_marked_offline] == [stale.id]


def test_after_silence_the_platform_hears_again_from_the_first_heartbeat(make):
    workspace = make.workspace()
    runtimes = fleet(make, workspace, 6, seen_ago=20)
    sweep_stale_runtimes(rules=RULES)  # silent
    # The web tier is back: one heartbeat lands; the others have not beaten yet.
    AgentRuntime.objects.filter(pk=runtimes[0].pk).update(last_seen_at=seconds_ago(2))
    AgentRuntime.objects.filter(pk__in=[r.pk for r in runtimes[1:]]).update(
        last_seen_at=seconds_ago(60)
    )

    assert sweep_stale_runtimes(rules=RULES).runtimes_marked_offline == []

    after = state()
    assert after.silent_after is None
    assert timedelta(seconds=1) <= db_now() - after.heard_since <= timedelta(seconds=5)
    # The full threshold from then: still online until 45 s after the first heartbeat.
    SweeperState.objects.update(heard_since=seconds_ago(46))
    marked = sweep_stale_runtimes(rules=RULES).runtimes_marked_offline
    assert sorted(r.id for r in marked) == sorted(r.id for r in runtimes[1:])


def test_hearing_again_the_other_sweep_records_first_holds_for_this_sweep_too(make, monkeypatch):
    workspace = make.workspace()
    runtimes = fleet(make, workspace, 6, seen_ago=20)
    sweep_stale_runtimes(rules=RULES)  # silent
    silent_after = state().silent_after
    AgentRuntime.objects.filter(pk=runtimes[0].pk).update(last_seen_at=seconds_ago(2))
    AgentRuntime.objects.filter(pk__in=[r.pk for r in runtimes[1:]]).update(
        last_seen_at=seconds_ago(60)
    )
    other_sweep_between_read_and_record(
        monkeypatch,
        lambda: sweeper_state.heard_after_silence(
            silent_after=silent_after, first_heard=runtime_fleet.first_heard_after(silent_after)
        ),
    )

    assert sweep_stale_runtimes(rules=RULES).runtimes_marked_offline == []
    assert statuses(*runtimes) == ["online"] * 6


def test_silence_longer_than_the_grace_is_no_blindness_and_the_brake_holds_the_work(make):
    workspace = make.workspace()
    gone = fleet(make, workspace, 6, seen_ago=200)  # silent for longer than the 120 s grace
    task = make.task(make.agent(gone[0]), status="running")

    result = sweep_stale_runtimes(rules=RULES)

    assert len(result.runtimes_marked_offline) == 6
    assert state().brake_engaged_at is not None
    assert AgentTask.objects.get(pk=task.pk).status == "running"
