"""A heartbeat racing a sweep is never lost: real transactions on real connections, in threads."""

import threading
from datetime import timedelta

import pytest
from django.db import transaction

from runtimes import daemons
from runtimes.models import AgentRuntime
from runtimes.sweeps import RuntimeChange, sweep_stale_runtimes
from tests.daemon_client import DaemonClient
from tests.support import in_thread, wait_for_lock_wait

pytestmark = pytest.mark.django_db(transaction=True)

STALE_AFTER = timedelta(seconds=45)


def test_heartbeat_behind_a_sweeps_lock_brings_the_runtime_back_announced(make, signal_log):
    workspace = make.workspace()
    runtime = make.runtime(workspace, seen_ago=60)
    swept, release = threading.Event(), threading.Event()

    def sweep_and_hold():
        with transaction.atomic():
            result = sweep_stale_runtimes(stale_after=STALE_AFTER)
            swept.set()
            release.wait(10)
        return result

    sweeper, sweep_outcome = in_thread(sweep_and_hold)
    assert swept.wait(10)
    daemon = DaemonClient(workspace)
    beater, beat_outcome = in_thread(daemon.post, "heartbeat", {"runtime_id": str(runtime.id)})
    wait_for_lock_wait()
    release.set()
    sweeper.join(10)
    beater.join(10)

    assert [c.id for c in sweep_outcome[0].runtimes_marked_offline] == [runtime.id]
    assert beat_outcome[0].status_code == 200
    runtime.refresh_from_db()
    assert (runtime.status, runtime.offline_at) == ("online", None)
    change = RuntimeChange(id=runtime.id, workspace_id=workspace.id)
    assert signal_log.runtimes_offline == [change]
    assert signal_log.runtimes_changed == [("online", change)]


def test_sweep_steps_around_a_heartbeat_in_flight_and_announces_nothing(make, signal_log):
    workspace = make.workspace()
    runtime = make.runtime(workspace, seen_ago=60)
    beaten, release = threading.Event(), threading.Event()

    def heartbeat_and_hold():
        with transaction.atomic():
            came_back = daemons.heartbeat(workspace_id=workspace.id, runtime_id=runtime.id)
            beaten.set()
            release.wait(10)
        return came_back

    beater, beat_outcome = in_thread(heartbeat_and_hold)
    assert beaten.wait(10)
    result = sweep_stale_runtimes(stale_after=STALE_AFTER)
    release.set()
    beater.join(10)

    assert not result
    assert beat_outcome == [False]
    assert AgentRuntime.objects.get(id=runtime.id).status == "online"
    assert signal_log.runtimes_offline == []
    assert signal_log.runtimes_changed == []
