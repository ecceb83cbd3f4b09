"""realtime/receivers.py: a channel layer that is down or silent never undoes, stalls or crashes
a sweep; it is logged and given up within ANNOUNCE_TIMEOUT_SECONDS."""

import asyncio
import logging
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import override_settings

from multica.processes import free_port
from realtime import receivers
from runtimes.models import Agent, AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
from tasks.models import AgentTask

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def channel_layer_at(port: int):
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": None}]
            },
        }
    }
    # channels drops its cached layer when CHANNEL_LAYERS changes.
    with override_settings(CHANNEL_LAYERS=layers):
        yield


@contextmanager
def silent_server():
    """A port that accepts connections and never answers: a hung Redis."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def outage(make):
    runtime = make.runtime(seen_ago=60)
    agent = make.agent(runtime, status="working")
    return runtime, agent, make.task(agent, status="running")


def sweep() -> None:
    sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)))


@pytest.fixture
def announce_seconds(monkeypatch) -> list[float]:
    """How long each real `announce` took: the sweep's own queries and a loaded machine's
    scheduling are no part of the channel layer's timeout, so only announcing is timed."""
    seconds = []
    real_announce = receivers.announce

    def timed_announce(events):
        started = time.monotonic()
        try:
            real_announce(events)
        finally:
            seconds.append(time.monotonic() - started)

    # The receivers look `announce` up in the module at each call.
    monkeypatch.setattr(receivers, "announce", timed_announce)
    return seconds


def assert_sweep_stood(runtime, agent, task):
    assert AgentRuntime.objects.get(pk=runtime.pk).status == "offline"
    assert AgentTask.objects.get(pk=task.pk).status == "failed"
    assert Agent.objects.get(pk=agent.pk).status == "idle"


def announce_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "realtime.receivers"]


def test_a_refused_channel_layer_leaves_the_sweep_committed_and_is_logged(
    make, caplog, announce_seconds
):
    rows = outage(make)
    with channel_layer_at(free_port()), caplog.at_level(logging.WARNING):
        sweep()

    assert_sweep_stood(*rows)
    assert len(announce_seconds) == 3
    assert sum(announce_seconds) < receivers.ANNOUNCE_TIMEOUT_SECONDS + 0.5
    assert "realtime.announce_failed" in announce_logs(caplog)


def test_a_hung_channel_layer_is_given_up_after_the_timeout_once_per_sweep(
    make, caplog, announce_seconds
):
    rows = outage(make)
    with silent_server() as port, channel_layer_at(port), caplog.at_level(logging.WARNING):
        sweep()

    assert_sweep_stood(*rows)
    # Three signals (offline, failed, agent): the first waits out the timeout, the others
    # see the layer is down and skip at once.
    first, *others = announce_seconds
    timeout = receivers.ANNOUNCE_TIMEOUT_SECONDS
    assert timeout <= first < timeout + 0.5
    assert len(others) == 2
    assert sum(others) < 0.5
    assert announce_logs(caplog) == [
        "realtime.announce_failed",
        "realtime.announce_skipped",
        "realtime.announce_skipped",
    ]


def test_announcing_resumes_once_the_retry_pause_is_over(make, caplog, monkeypatch):
    monkeypatch.setattr(receivers, "RETRY_AFTER_SECONDS", 0.0)
    with channel_layer_at(free_port()), caplog.at_level(logging.WARNING):
        outage(make)
        sweep()
    assert "realtime.announce_skipped" not in announce_logs(caplog)
    assert announce_logs(caplog).count("realtime.announce_failed") == 3


def test_batches_hold_one_workspaces_events_up_to_the_limit():
    first, second = uuid.uuid4(), uuid.uuid4()
    events = [receivers.event("task:failed", first, {"n": n}) for n in range(1001)]
    events += [receivers.event("task:failed", second, {"n": 0})]

    batches = list(receivers.batches(events))

    assert [(group, len(message["events"])) for group, message in batches] == [
        (f"workspace.{first}", 500),
        (f"workspace.{first}", 500),
        (f"workspace.{first}", 1),
        (f"workspace.{second}", 1),
    ]
    assert [e["payload"]["n"] for _, m in batches[:3] for e in m["events"]] == list(range(1001))
    assert {m["type"] for _, m in batches} == {"events.batch"}


def test_a_bug_is_logged_with_its_traceback_and_does_not_pause_announcing(caplog):
    async def from_inside_an_event_loop():  # where async_to_sync refuses to run
        receivers.announce([receivers.event("agent:status", uuid.uuid4(), {})])

    with caplog.at_level(logging.ERROR):
        asyncio.run(from_inside_an_event_loop())

    (record,) = [r for r in caplog.records if r.name == "realtime.receivers"]
    assert (record.getMessage(), record.exc_info is not None) == ("realtime.announce_failed", True)
    assert receivers._layer_down_until == 0.0
