"""sweeper/tasks.py: the Celery task around sweep_stale_runtimes, called directly and run by a
real worker from the real Redis and RabbitMQ brokers; its overlap lock."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from runtimes.models import Agent, AgentRuntime
from sweeper.locks import LOCK_SPACE, lock_key
from sweeper.tasks import sweep_stale_runtimes
from tasks.models import AgentTask
from tests.helpers.db import database_url, seconds_ago, sweep_lock_held_elsewhere
from tests.helpers.workers import RABBITMQ_URL, app_on, wait_until, worker


@pytest.fixture(autouse=True)
def _no_reconnect_grace(settings):
    # Tasks of a runtime found stale fail in the same sweep, as they did before the grace.
    settings.RUNTIME_RECONNECT_GRACE_SECONDS = 0


def outage(make):
    runtime = make.runtime(seen_ago=600)
    agent = make.agent(runtime, status="working")
    return runtime, agent, make.task(agent, status="running")


def swept(runtime, agent, task) -> bool:
    return (
        AgentRuntime.objects.get(pk=runtime.pk).status == "offline"
        and AgentTask.objects.get(pk=task.pk).status == "failed"
        and Agent.objects.get(pk=agent.pk).status == "idle"
    )


@pytest.mark.django_db
def test_the_task_sweeps_and_logs_its_counts(make, caplog):
    rows = outage(make)
    make.runtime(seen_ago=5)

    with caplog.at_level(logging.INFO, logger="sweeper.tasks"):
        counts = sweep_stale_runtimes()

    assert counts == {"runtimes_offline": 1, "tasks_failed": 1, "agents_idle": 1}
    assert swept(*rows)
    (record,) = [r for r in caplog.records if r.name == "sweeper.tasks"]
    assert (record.getMessage(), record.runtimes_offline, record.tasks_failed) == (
        "sweep.done",
        1,
        1,
    )


@pytest.mark.django_db
def test_a_tick_is_skipped_while_the_previous_run_still_goes(make, caplog):
    runtime, _, _ = outage(make)

    with sweep_lock_held_elsewhere("sweep_stale_runtimes"), caplog.at_level(logging.INFO):
        assert sweep_stale_runtimes() is None
        assert AgentRuntime.objects.get(pk=runtime.pk).status == "online"
    assert "sweep.skipped" in [r.getMessage() for r in caplog.records]

    assert sweep_stale_runtimes()["runtimes_offline"] == 1


@pytest.mark.django_db
def test_sweeps_need_no_redis(make, settings):
    rows = outage(make)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    assert sweep_stale_runtimes()["runtimes_offline"] == 1

    assert swept(*rows)


HOLD_THE_LOCK = """
import sys, time, psycopg2
connection = psycopg2.connect(sys.argv[1])
connection.cursor().execute("SELECT pg_advisory_lock(%s, %s)", [int(sys.argv[2]), int(sys.argv[3])])
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.django_db(transaction=True)
def test_the_lock_dies_with_a_killed_holder_and_the_next_tick_runs_at_once(make):
    rows = outage(make)
    key = [str(LOCK_SPACE), str(lock_key("sweep_stale_runtimes"))]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, database_url(), *key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert sweep_stale_runtimes() is None  # a sweep still running elsewhere
        os.kill(holder.pid, signal.SIGKILL)  # dies mid-sweep, releasing nothing itself
        holder.wait(10)
        deadline = time.monotonic() + 10  # the server notices the closed socket at once
        while (counts := sweep_stale_runtimes()) is None:
            assert time.monotonic() < deadline, "the dead holder's lock outlived it"
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()

    assert counts["runtimes_offline"] == 1
    assert swept(*rows)


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_fails_one_tick_and_the_next_works(make):
    rows = outage(make)
    settings_dict = connection.settings_dict
    real_port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = "1"  # nothing listens there: the database is down
    try:
        with pytest.raises(Exception, match="connect"):
            sweep_stale_runtimes()
    finally:
        settings_dict["PORT"] = real_port
    # No restart: same process, same lock name (released by the failed run), same settings.
    assert sweep_stale_runtimes()["runtimes_offline"] == 1
    assert swept(*rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_runs_the_task_from_the_broker(make, settings, broker):
    rows = outage(make)
    # The project's configuration on a queue of this run's own: the brokers are shared.
    url = settings.REDIS_URL if broker == "redis" else RABBITMQ_URL
    with app_on(url) as app, worker(app):
        app.send_task(sweep_stale_runtimes.name)
        wait_until(lambda: swept(*rows))


@pytest.mark.django_db
def test_beats_collection_task_collects_and_logs_its_count(make, caplog, settings):
    from sweeper.tasks import collect_offline_runtimes

    settings.RUNTIME_GC_AFTER_SECONDS = 60
    runtime = make.runtime(seen_ago=600, status="offline")
    AgentRuntime.objects.filter(pk=runtime.pk).update(offline_at=seconds_ago(600))

    with caplog.at_level(logging.INFO, logger="sweeper.tasks"):
        assert collect_offline_runtimes() == 1

    assert not AgentRuntime.objects.filter(pk=runtime.pk).exists()
    assert [r.getMessage() for r in caplog.records if r.name == "sweeper.tasks"] == ["gc.done"]
