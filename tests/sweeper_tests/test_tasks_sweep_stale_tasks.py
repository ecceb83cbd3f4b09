"""sweeper/tasks.py: the Celery task around sweep_stale_tasks, called directly and run by a real
worker from the real Redis and RabbitMQ brokers."""

import logging

import pytest

from runtimes.models import Agent
from sweeper.tasks import sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.db import sweep_lock_held_elsewhere
from tests.helpers.workers import RABBITMQ_URL, app_on, wait_until, worker


def stuck(make):
    """An agent with a task dispatched past the 300 s default timeout, and a fresh one."""
    agent = make.agent(status="working")
    return agent, make.task(agent, status="dispatched", age=301)


def swept(agent, task) -> bool:
    task = AgentTask.objects.get(pk=task.pk)
    return (task.status, task.failure_reason) == ("failed", "timeout") and (
        Agent.objects.get(pk=agent.pk).status == "idle"
    )


@pytest.mark.django_db
def test_the_task_sweeps_and_logs_its_counts(make, caplog):
    rows = stuck(make)
    fresh = make.task(make.agent(), status="running", age=60)

    with caplog.at_level(logging.INFO, logger="sweeper.tasks"):
        counts = sweep_stale_tasks()

    assert counts == {"runtimes_offline": 0, "tasks_failed": 1, "agents_idle": 1}
    assert swept(*rows)
    assert AgentTask.objects.get(pk=fresh.pk).status == "running"
    (record,) = [r for r in caplog.records if r.name == "sweeper.tasks"]
    assert (record.getMessage(), record.tasks_failed) == ("sweep.done", 1)


@pytest.mark.django_db
def test_a_tick_is_skipped_while_the_previous_run_still_goes(make, caplog):
    _, task = stuck(make)

    with sweep_lock_held_elsewhere("sweep_stale_tasks"), caplog.at_level(logging.INFO):
        assert sweep_stale_tasks() is None
        assert AgentTask.objects.get(pk=task.pk).status == "dispatched"
    assert "sweep.skipped" in [r.getMessage() for r in caplog.records]

    assert sweep_stale_tasks()["tasks_failed"] == 1


@pytest.mark.django_db
def test_the_other_sweeps_lock_does_not_hold_this_one_up(make):
    rows = stuck(make)
    with sweep_lock_held_elsewhere("sweep_stale_runtimes"):
        assert sweep_stale_tasks() == {"runtimes_offline": 0, "tasks_failed": 1, "agents_idle": 1}
    assert swept(*rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_runs_the_task_from_the_broker(make, settings, broker):
    rows = stuck(make)
    # The project's configuration on a queue of this run's own: the brokers are shared.
    url = settings.REDIS_URL if broker == "redis" else RABBITMQ_URL
    with app_on(url) as app, worker(app):
        app.send_task(sweep_stale_tasks.name)
        wait_until(lambda: swept(*rows))
