"""Shared fixtures: real rows in the real PostgreSQL, a daemon talking to the API, and the
domain signals they send."""

import pytest

from tests.helpers.daemon_client import DaemonClient
from tests.helpers.factories import Factory, SignalLog


@pytest.fixture
def make() -> Factory:
    return Factory()


@pytest.fixture
def daemon(make, django_capture_on_commit_callbacks):
    """A daemon of a fresh workspace, talking to the API through Django's test client."""
    return DaemonClient(make.workspace(), commits=django_capture_on_commit_callbacks)


@pytest.fixture
def signal_log():
    from runtimes.signals import agents_status_changed, runtimes_changed, runtimes_went_offline
    from tasks.signals import tasks_failed, tasks_queued

    log = SignalLog()
    pairs = [
        (runtimes_went_offline, log.on_offline),
        (tasks_failed, log.on_failed),
        (agents_status_changed, log.on_agents),
        (runtimes_changed, log.on_changed),
        (tasks_queued, log.on_queued),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, weak=False)
    yield log
    for signal, receiver in pairs:
        signal.disconnect(receiver)
