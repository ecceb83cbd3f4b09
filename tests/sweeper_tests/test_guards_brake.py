"""sweeper/guards.py, the mass-outage brake: a sweep that would take too many runtimes offline
at once marks them as usual and holds their tasks until they come back or an operator says."""

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db.models import F
from django.db.models.functions import Now
from django.urls import reverse

from runtimes.models import AgentRuntime
from sweeper import guards
from sweeper.config import Rules
from sweeper.models import SweeperState
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.threads import together

pytestmark = pytest.mark.django_db

RULES = Rules(stale_after=timedelta(seconds=45), brake_fraction=0.5, brake_min_runtimes=5)
WITH_GRACE = replace(RULES, reconnect_grace=timedelta(seconds=300))


def world(make, *, online: int, stale: int):
    """`online` fresh runtimes and `stale` silent ones, each silent one running a task."""
    workspace = make.workspace()
    for _ in range(online):
        make.runtime(workspace, seen_ago=1)
    silent = [make.runtime(workspace, seen_ago=60) for _ in range(stale)]
    return silent, [make.task(make.agent(r, status="working"), status="running") for r in silent]


def task_statuses(tasks) -> set[str]:
    return set(
        AgentTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list("status", flat=True)
    )


def brake() -> SweeperState:
    return SweeperState.objects.get()


def test_a_sweep_taking_more_than_the_fraction_offline_engages_the_brake(make, caplog):
    _silent, tasks = world(make, online=4, stale=6)

    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        result = sweep_stale_runtimes(rules=RULES)

    assert len(result.runtimes_marked_offline) == 6  # marked offline as usual
    assert result.tasks_failed == []  # their work held, though there is no grace
    assert task_statuses(tasks) == {"running"}
    state = brake()
    assert (state.brake_online, state.brake_stale) == (10, 6)
    assert [r.getMessage() for r in caplog.records] == ["sweeper.brake_engaged"]


@pytest.mark.parametrize(("online", "stale"), [(6, 4), (5, 5)], ids=["40%", "exactly half"])
def test_up_to_the_fraction_the_work_fails_as_usual(make, online, stale):
    _, _tasks = world(make, online=online, stale=stale)

    assert len(sweep_stale_runtimes(rules=RULES).tasks_failed) == stale
    assert brake().brake_engaged_at is None


def test_below_the_minimum_fleet_there_is_no_brake(make):
    _, _tasks = world(make, online=1, stale=3)

    assert len(sweep_stale_runtimes(rules=RULES).tasks_failed) == 3
    assert brake().brake_engaged_at is None


def test_the_brake_holds_every_sweep_until_the_runtimes_come_back(make, caplog):
    silent, tasks = world(make, online=4, stale=6)
    sweep_stale_runtimes(rules=RULES)
    assert sweep_stale_runtimes(rules=RULES).tasks_failed == []  # still held

    # Two of the six come back: four of ten left offline, below half; the brake lets go.
    AgentRuntime.objects.filter(pk__in=[r.pk for r in silent[:2]]).update(
        status="online", last_seen_at=Now(), offline_at=None
    )
    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        sweep_stale_runtimes(rules=RULES)
    released = brake()
    assert released.brake_engaged_at is None
    assert released.brake_released_by == "automatic"
    assert "sweeper.brake_released" in [r.getMessage() for r in caplog.records]

    # The four still gone now lose their work; the two that came back keep theirs.
    failed = sweep_stale_runtimes(rules=RULES).tasks_failed
    assert sorted(t.runtime_id for t in failed) == sorted(r.id for r in silent[2:])
    assert task_statuses(tasks[:2]) == {"running"}


def lost_at_once_seen_over_two_sweeps(make):
    """Ten runtimes, six of them lost at one moment: their last beats were spread over a
    heartbeat period, so three turn stale by one sweep and three by the next. Returns the
    six, their tasks and the first sweep's result."""
    workspace = make.workspace()
    for _ in range(4):
        make.runtime(workspace, seen_ago=1)
    lost = [make.runtime(workspace, seen_ago=ago) for ago in (60, 60, 60, 40, 40, 40)]
    tasks = [make.task(make.agent(r, status="working"), status="running") for r in lost]
    first = sweep_stale_runtimes(rules=WITH_GRACE)
    AgentRuntime.objects.filter(pk__in=[r.pk for r in lost[3:]]).update(
        last_seen_at=Now() - timedelta(seconds=60)
    )
    return lost, tasks, first


def test_a_loss_that_turns_stale_over_two_sweeps_engages_the_brake(make):
    lost, tasks, first = lost_at_once_seen_over_two_sweeps(make)
    assert len(first.runtimes_marked_offline) == 3  # 3 of 10: no brake yet
    assert brake().brake_engaged_at is None

    # The three still in their grace count with the three stale now: 6 of the 10.
    second = sweep_stale_runtimes(rules=WITH_GRACE)

    assert len(second.runtimes_marked_offline) == 3
    state = brake()
    assert state.brake_engaged_at is not None
    assert (state.brake_online, state.brake_stale) == (10, 6)
    # Past the grace, all six are held: the brake does not let go of the first three.
    AgentRuntime.objects.filter(pk__in=[r.pk for r in lost]).update(
        offline_at=F("offline_at") - timedelta(seconds=400)
    )
    SweeperState.objects.update(brake_engaged_at=F("brake_engaged_at") - timedelta(seconds=400))
    assert sweep_stale_runtimes(rules=WITH_GRACE).tasks_failed == []
    assert brake().brake_engaged_at is not None
    assert task_statuses(tasks) == {"running"}


def test_runtimes_an_operator_released_do_not_engage_the_brake_again(make):
    lost, _tasks, _first = lost_at_once_seen_over_two_sweeps(make)
    sweep_stale_runtimes(rules=WITH_GRACE)
    # Marked a few seconds before the release (a test's transaction has one clock reading).
    AgentRuntime.objects.filter(pk__in=[r.pk for r in lost]).update(
        offline_at=F("offline_at") - timedelta(seconds=5)
    )
    assert guards.release_brake(by="operator")

    # One more runtime turns stale, the six released ones still offline within the grace.
    make.runtime(lost[0].workspace, seen_ago=60)
    sweep_stale_runtimes(rules=WITH_GRACE)

    assert brake().brake_engaged_at is None


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_engage_the_brake_once(make, caplog):
    world(make, online=4, stale=30)

    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        results = together(*[lambda: sweep_stale_runtimes(rules=RULES, chunk_size=7)] * 2)

    marked = [r.id for res in results for r in res.runtimes_marked_offline]
    assert len(marked) == len(set(marked)) == 30
    assert not any(res.tasks_failed for res in results)
    assert [r.getMessage() for r in caplog.records].count("sweeper.brake_engaged") == 1


def test_an_operator_releases_the_brake_in_the_admin_and_it_is_logged(make, admin_client, caplog):
    _silent, _tasks = world(make, online=4, stale=6)
    sweep_stale_runtimes(rules=RULES)

    with caplog.at_level(logging.WARNING, logger="sweeper.guards"):
        response = admin_client.post(
            reverse("admin:sweeper_sweeperstate_changelist"),
            {"action": "release_brake", "_selected_action": ["1"]},
        )

    assert response.status_code == 302
    assert brake().brake_engaged_at is None
    assert brake().brake_released_by == "admin (admin)"
    (record,) = [r for r in caplog.records if r.getMessage() == "sweeper.brake_released"]
    assert record.by == "admin (admin)"
    assert len(sweep_stale_runtimes(rules=RULES).tasks_failed) == 6
