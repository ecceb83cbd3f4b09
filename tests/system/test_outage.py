"""A platform outage with real processes: 30 simulated daemons (tools/daemons.py) beat over HTTP
against the web process, a Celery worker and beat (on the test database, with a broker of the
test's own), each holding a running task that it lists in its heartbeats. The web process is
killed for twice the stale threshold, and three daemons die while it is down.

Without the guards every runtime would be stale by the time the web process is back; with
them, no live runtime is marked offline and no task fails, and the three that really died are
still found once the platform hears again (bench/fleet.py measures the same at scale)."""

import asyncio
import time

import pytest

from tests.helpers.db import database_url
from tools.outages import (
    Platform,
    db_now,
    forget_verdicts,
    in_thread,
    record_verdicts,
    verdicts_since,
    working_fleet,
)
from tools.servers import production_env, redis_server

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT, STALE, INTERVAL = 1, 3, 1
SETTINGS = {
    "RUNTIME_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "RUNTIME_STALE_SECONDS": str(STALE),
    "SWEEP_INTERVAL_SECONDS": str(INTERVAL),
    # Longer than the silence (outage, restart, a beat): the outage is taken for blindness.
    "RUNTIME_RECONNECT_GRACE_SECONDS": "15",
    "SWEEP_BRAKE_MIN_RUNTIMES": "20",
    "DEBUG": "0",
}
DAEMONS, DYING = 30, 3
OUTAGE_SECONDS = 2 * STALE


def runtime_ids(fleet) -> set[str]:
    return {runtime_id for daemon in fleet for runtime_id in daemon.runtime_ids}


async def web_outage(platform: Platform):
    """Returns the verdicts on the live and on the dead runtimes since the outage began."""
    fleet = await working_fleet(platform.base, DAEMONS, heartbeat_seconds=HEARTBEAT)
    await asyncio.sleep(STALE)  # every runtime has beaten since it claimed; sweeps recorded
    began = await in_thread(db_now)
    platform.kill("web")
    dying = fleet[:DYING]
    await asyncio.gather(*(daemon.die() for daemon in dying))
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(platform.start, "web")
    live, dead = runtime_ids(fleet[DYING:]), runtime_ids(dying)
    deadline = time.monotonic() + 30
    while not dead <= (await in_thread(verdicts_since, began, [*dead])).offline.keys():
        assert time.monotonic() < deadline, "the dead runtimes were not all found"
        await asyncio.sleep(0.5)
    # As long again for any wrong verdict to show: a live runtime the sweeper took for stale
    # after hearing again would be marked by now.
    await asyncio.sleep(STALE + 2 * INTERVAL)
    verdicts = await in_thread(verdicts_since, began, [*live, *dead])
    await asyncio.gather(*(daemon.die() for daemon in fleet[DYING:]))
    return live, dead, verdicts


def test_a_web_outage_marks_no_live_runtime_offline_and_true_deaths_are_still_found(tmp_path):
    record_verdicts()
    env = production_env(**SETTINGS, DATABASE_URL=database_url())
    try:
        with redis_server() as broker:
            platform = Platform({**env, "CELERY_BROKER_URL": broker.url}, tmp_path)
            platform.start()
            try:
                live, dead, verdicts = asyncio.run(web_outage(platform))
            except BaseException:
                print(platform.tail())
                raise
            finally:
                platform.stop()
    finally:
        forget_verdicts()

    assert live & verdicts.offline.keys() == set()
    assert live & verdicts.failed.keys() == set()
    assert dead <= verdicts.offline.keys()
    assert verdicts.brake is None
