"""Task leases: the daemon lists the tasks it runs in its heartbeats. A task it vouches for is
stopped only by the maximum running time; a live task it no longer lists fails as orphaned
once missing for the orphan grace. Daemons that send no list are judged as before."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago

pytestmark = pytest.mark.django_db

RULES = Rules(
    running_timeout=timedelta(seconds=9000),
    max_running=timedelta(seconds=86400),
    orphan_grace=timedelta(seconds=30),
)


@pytest.fixture
def runtime(daemon, make):
    return make.runtime(daemon.workspace)


def beat(daemon, runtime, leases=None):
    body = {"runtime_id": str(runtime.id)}
    if leases is not None:
        body["running_task_ids"] = [str(task.id) for task in leases]
    response = daemon.post("heartbeat", body)
    assert response.status_code == 200, response.content
    return response


def lease(task) -> tuple:
    task.refresh_from_db()
    return task.leased, task.unlisted_since is not None


def age(task, *, started: float | None = None, unlisted: float | None = None, dispatched=None):
    fields = {}
    if started is not None:
        fields["started_at"] = seconds_ago(started)
    if unlisted is not None:
        fields["unlisted_since"] = seconds_ago(unlisted)
    if dispatched is not None:
        fields["dispatched_at"] = seconds_ago(dispatched)
    AgentTask.objects.filter(pk=task.pk).update(**fields)


def failed_by_the_sweep() -> dict:
    return {t.id: t.failure_reason for t in sweep_stale_tasks(rules=RULES).tasks_failed}


def test_a_heartbeat_without_a_list_leaves_the_tasks_alone(daemon, make, runtime):
    task = make.task(make.agent(runtime), status="running", age=9001)

    beat(daemon, runtime)

    assert lease(task) == (False, False)
    assert failed_by_the_sweep() == {task.id: "timeout"}  # judged by the wall clock, as before


@pytest.mark.parametrize(("started", "fails"), [(86399, False), (86401, True)])
def test_a_vouched_for_task_is_stopped_only_by_the_maximum_running_time(
    daemon, make, runtime, started, fails
):
    task = make.task(make.agent(runtime), status="running", age=10)
    beat(daemon, runtime, [task])
    age(task, started=started)

    assert lease(task) == (True, False)
    assert failed_by_the_sweep() == ({task.id: "timeout"} if fails else {})


@pytest.mark.parametrize(("missing", "fails"), [(29, False), (31, True)])
def test_a_live_task_no_longer_listed_fails_as_orphaned_after_the_grace(
    daemon, make, runtime, missing, fails
):
    agent = make.agent(runtime)
    # Within the dispatch timeout (300 s), past the orphan grace since its dispatch.
    kept, dropped = (
        make.task(agent, status="running", age=600),
        make.task(agent, status="dispatched", age=200),
    )
    beat(daemon, runtime, [kept, dropped])
    beat(daemon, runtime, [kept])  # the daemon no longer runs `dropped`
    age(dropped, unlisted=missing)

    assert (lease(kept), lease(dropped)) == ((True, False), (True, True))
    failures = failed_by_the_sweep()
    assert failures == ({dropped.id: "orphaned"} if fails else {})
    if fails:
        assert AgentTask.objects.get(pk=dropped.pk).error == "the daemon no longer runs it"


def test_a_task_just_dispatched_gets_the_grace_from_its_dispatch(daemon, make, runtime):
    task = make.task(make.agent(runtime), status="dispatched", age=5)
    beat(daemon, runtime, [])  # the heartbeat crossed the claim
    age(task, unlisted=60)

    assert lease(task) == (False, True)
    assert failed_by_the_sweep() == {}  # dispatched 5 s ago: within the grace
    age(task, dispatched=31)
    assert failed_by_the_sweep() == {task.id: "orphaned"}


def test_listed_again_it_is_vouched_for_again(daemon, make, runtime):
    task = make.task(make.agent(runtime), status="running", age=600)
    beat(daemon, runtime, [])
    beat(daemon, runtime, [task])
    age(task, dispatched=600)

    assert lease(task) == (True, False)
    assert failed_by_the_sweep() == {}


def test_another_runtimes_tasks_in_the_list_change_nothing(daemon, make, runtime):
    other = make.task(make.agent(make.runtime(daemon.workspace)), status="running")
    foreign = make.task(make.agent(make.runtime(make.workspace("other"))), status="running")

    beat(daemon, runtime, [other, foreign])

    assert (lease(other), lease(foreign)) == ((False, False), (False, False))


def test_a_heartbeat_whose_list_did_not_change_writes_no_task(daemon, make, runtime):
    agent = make.agent(runtime)
    tasks = [make.task(agent, status="running") for _ in range(6)]
    beat(daemon, runtime, tasks)

    def versions():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT xmin::text FROM agent_task WHERE id = ANY(%s) ORDER BY id",
                [[t.id for t in tasks]],
            )
            return cursor.fetchall()

    before = versions()
    with CaptureQueriesContext(connection) as queries:
        beat(daemon, runtime, tasks)

    assert versions() == before
    # One statement for the whole heartbeat of an online runtime (the token was checked by the
    # first one), with no transaction of its own: nothing to announce.
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["EXECUTE"]


@pytest.mark.parametrize(
    ("leases", "message"),
    [
        ("all", "running_task_ids: required array"),
        (["nope"], "running_task_ids: not a UUID"),
        ([7], "running_task_ids: required UUID string"),
        (["00000000-0000-0000-0000-000000000000"] * 1001, "running_task_ids: more than 1000 items"),
    ],
    ids=["not-a-list", "not-a-uuid", "not-a-string", "too-many"],
)
def test_a_bad_list_is_refused_and_changes_nothing(daemon, make, runtime, leases, message):
    task = make.task(make.agent(runtime), status="running")
    body = {"runtime_id": str(runtime.id), "running_task_ids": leases}

    response = daemon.post("heartbeat", body)

    assert (response.status_code, response.json()) == (400, {"error": message})
    assert lease(task) == (False, False)


def test_an_offline_runtimes_unlisted_task_is_left_to_the_grace_and_the_brake(
    daemon, make, runtime
):
    # A heartbeat that crossed a claim left the new task unlisted; then the daemon went silent.
    # Its runtime is offline: whether its tasks fail is for the reconnect grace and the brake
    # to say, not for a list that no daemon is sending any more.
    task = make.task(make.agent(runtime), status="dispatched", age=60)
    beat(daemon, runtime, [])
    age(task, unlisted=60)
    type(runtime).objects.filter(pk=runtime.pk).update(
        status="offline", offline_at=seconds_ago(40), offline_reason="stale"
    )

    assert failed_by_the_sweep() == {}
    type(runtime).objects.filter(pk=runtime.pk).update(status="online", offline_at=None)
    assert failed_by_the_sweep() == {task.id: "orphaned"}
