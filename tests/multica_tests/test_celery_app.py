"""multica/celery_app.py: the beat schedule, and beat's scheduler sending both sweeps to the real
broker, through a broker outage."""

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from celery.beat import Scheduler
from django.conf import settings

from multica.celery_app import app, beat_schedule
from tests.helpers.workers import app_on
from tools.servers import redis_server

SWEEPS = {"runtimes.sweep_stale_runtimes", "tasks.sweep_stale_tasks"}


GC = "runtimes.collect_offline_runtimes"
RELAY, PRUNE = "realtime.relay_events", "realtime.prune_events"


def test_the_schedule_runs_both_sweeps_every_interval_and_drops_missed_ticks():
    interval = settings.SWEEP_INTERVAL_SECONDS
    every = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert set(every) == SWEEPS | {GC, RELAY, PRUNE}
    for name in SWEEPS:
        assert every[name]["schedule"] == interval
        assert every[name]["options"]["expires"] == interval
    # Housekeeping, not a verdict: the collection of long-offline runtimes, a tenth as often.
    assert every[GC]["schedule"] == every[GC]["options"]["expires"] == 10 * interval
    assert every[PRUNE]["schedule"] == every[PRUNE]["options"]["expires"] == 10 * interval
    # The events' catch-up: every few seconds, whatever the sweeps' interval.
    relay_seconds = settings.EVENT_RELAY_INTERVAL_SECONDS
    assert every[RELAY]["schedule"] == every[RELAY]["options"]["expires"] == relay_seconds


def test_the_interval_comes_from_the_environment():
    code = (
        "from multica.celery_app import app; "
        "print(sorted({e['schedule'] for e in app.conf.beat_schedule.values()}))"
    )
    env = {**os.environ, "SWEEP_INTERVAL_SECONDS": "7", "EVENT_RELAY_INTERVAL_SECONDS": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[3, 7, 70]"


def sent(beat_app, count: int, timeout: float = 5.0) -> list:
    """The next `count` task messages on the app's queue (read off the real broker)."""
    messages = []
    with beat_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(beat_app.conf.task_default_queue)
        for _ in range(count):
            message = queue.get(timeout=timeout)
            message.ack()
            messages.append(message)
        queue.close()
    return messages


def tick_for(scheduler: Scheduler, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        scheduler.tick()
        time.sleep(0.05)


def beat_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@contextmanager
def beat_on(broker_url: str) -> Iterator[tuple[Celery, Scheduler]]:
    """Beat's scheduler, in this process, with both sweeps (and nothing else) every second."""
    with app_on(broker_url) as beat_app:
        entries = beat_schedule(1).items()
        beat_app.conf.beat_schedule = {k: e for k, e in entries if e["task"] in SWEEPS}
        scheduler = Scheduler(app=beat_app)
        try:
            yield beat_app, scheduler
        finally:
            scheduler.connection.release()


def test_beat_sends_both_sweeps_to_the_broker_with_an_expiry():
    # A broker of this test's own: no worker of another test can take the messages first.
    with redis_server() as broker, beat_on(broker.url) as (beat_app, scheduler):
        tick_for(scheduler, 1.3)
        messages = sent(beat_app, 2)

    assert {m.headers["task"] for m in messages} == SWEEPS
    assert all(m.headers["expires"] for m in messages)


def test_a_broker_outage_fails_a_tick_and_the_next_one_is_sent(caplog):
    # A Redis of this test's own, to take down and bring back.
    with redis_server() as broker, beat_on(broker.url) as (beat_app, scheduler):
        tick_for(scheduler, 1.3)
        assert len(sent(beat_app, 2)) == 2

        broker.stop()
        with caplog.at_level(logging.ERROR, logger="celery.beat"):
            # Both entries come due again, and each is given up (and logged), not waited on.
            deadline = time.monotonic() + 10
            while len(errors := beat_errors(caplog)) < 2 and time.monotonic() < deadline:
                tick_for(scheduler, 0.1)
        assert [e.split(":")[0] for e in errors] == ["Message Error"] * 2, errors

        broker.start()
        tick_for(scheduler, 1.2)
        assert {m.headers["task"] for m in sent(beat_app, 2)} == SWEEPS
