"""A heartbeat racing a sweep is never lost: real transactions on real connections, in threads."""

from datetime import timedelta

import pytest

from runtimes import daemons
from runtimes.changes import RuntimeChange
from runtimes.models import AgentRuntime
from runtimes.tokens import hash_token, issue_token
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.threads import held_open, in_thread, wait_for_lock_wait

pytestmark = pytest.mark.django_db(transaction=True)

STALE_AFTER = timedelta(seconds=45)


def test_heartbeat_behind_a_sweeps_lock_brings_the_runtime_back_announced(make, signal_log):
    workspace = make.workspace()
    runtime = make.runtime(workspace, seen_ago=60)
    with held_open(sweep_stale_runtimes, rules=Rules(stale_after=STALE_AFTER)) as sweep_outcome:
        daemon = DaemonClient(workspace)
        body = {"runtime_id": str(runtime.id)}
        beater, beat_outcome = in_thread(daemon.post, "heartbeat", body)
        wait_for_lock_wait()
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
    token = hash_token(issue_token(workspace=workspace)[1])
    with held_open(
        daemons.heartbeat, token_hash=token, runtime_id=runtime.id, reconnect_grace=STALE_AFTER
    ) as beat_outcome:
        result = sweep_stale_runtimes(rules=Rules(stale_after=STALE_AFTER))

    assert not result
    assert beat_outcome == [daemons.Heartbeat(came_back=False, contradicted=False)]
    assert AgentRuntime.objects.get(id=runtime.id).status == "online"
    assert signal_log.runtimes_offline == []
    assert signal_log.runtimes_changed == []
