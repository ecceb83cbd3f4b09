"""The scenarios of bench.fleet: each takes a working fleet on a running platform, makes the
platform or part of the fleet fail, waits until the sweeper must have judged, and says when
the failure began, which daemons really stopped beating and when the platform could hear
them again (each on the database's clock)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from tools import servers
from tools.daemon import Daemon
from tools.outages import Platform, db_now, in_thread, swept_since, verdicts_since

HEARTBEAT, STALE, INTERVAL, GRACE = 2, 6, 2, 30
# After the platform hears again: long enough for any runtime it wrongly judged stale to be
# marked (stale threshold from then, and a sweep or two more).
SETTLE_SECONDS = STALE + 3 * INTERVAL + HEARTBEAT + 1
# How long the brake must hold a dead fleet's tasks to count as holding them.
HOLD_SECONDS = 15
# The worker and beat down this long: three stale thresholds without a sweep.
SWEEPERS_DOWN_SECONDS = 3 * STALE
# Worker and beat started again: within this, a sweep is recorded (a loaded machine's worker
# takes seconds to boot).
SWEEP_AGAIN_SECONDS = 60


@dataclass
class Run:
    args: object
    platform: Platform
    postgres: servers.PostgresServer
    fleet: list[Daemon]


@dataclass(frozen=True)
class Outcome:
    began: datetime  # when the failure began (database clock): verdicts are read from then
    stopped: list[Daemon]  # the daemons that stopped beating (died, or cut off for a while)
    heard: datetime  # when the platform could hear them again: their detection counts from then


def runtime_ids(fleet: list[Daemon]) -> list[str]:
    return [runtime_id for daemon in fleet for runtime_id in daemon.runtime_ids]


def share(fleet: list[Daemon], fraction: float) -> list[Daemon]:
    return fleet[: max(1, round(len(fleet) * fraction))]


async def web(run: Run) -> Outcome:
    began = await in_thread(db_now)
    run.platform.kill("web")
    await asyncio.sleep(run.args.outage)
    await asyncio.to_thread(run.platform.start, "web")
    await asyncio.sleep(SETTLE_SECONDS)
    return Outcome(began, [], began)


async def web_deaths(run: Run) -> Outcome:
    """10% of the daemons die while the web process is down."""
    began = await in_thread(db_now)
    run.platform.kill("web")
    dying = share(run.fleet, 0.1)
    await asyncio.gather(*(daemon.die() for daemon in dying))
    await asyncio.sleep(run.args.outage)
    await asyncio.to_thread(run.platform.start, "web")
    heard = await in_thread(db_now)
    await asyncio.sleep(SETTLE_SECONDS + GRACE)
    return Outcome(began, dying, heard)


async def database(run: Run) -> Outcome:
    began = await in_thread(db_now)
    await asyncio.to_thread(run.postgres.stop)
    await asyncio.sleep(run.args.outage)
    await asyncio.to_thread(run.postgres.start)
    await asyncio.sleep(SETTLE_SECONDS)
    return Outcome(began, [], began)


async def sweepers(run: Run) -> Outcome:
    """The worker and beat killed for three stale thresholds, then started again: the
    platform hears all along, but no sweep runs; it judges again from the first sweep."""
    began = await in_thread(db_now)
    run.platform.kill("worker")
    run.platform.kill("beat")
    await asyncio.sleep(SWEEPERS_DOWN_SECONDS)
    restarted = await in_thread(db_now)
    run.platform.start("worker", "beat")
    deadline = time.monotonic() + SWEEP_AGAIN_SECONDS
    while (heard := await in_thread(swept_since, restarted)) is None:
        assert time.monotonic() < deadline, "no sweep after the worker and beat restarted"
        await asyncio.sleep(0.5)
    await asyncio.sleep(SETTLE_SECONDS)
    return Outcome(began, [], heard)


async def partial(run: Run) -> Outcome:
    """10% of the daemons cut off for --partition s: longer than stale + grace."""
    return await cut_off(run, share(run.fleet, 0.1), run.args.partition)


async def blip(run: Run) -> Outcome:
    """10% of the daemons cut off for --blip s (a few seconds over the stale threshold),
    then beating again: back within the grace, their tasks must go on. Watched until the
    grace has run out since they went offline."""
    outcome = await cut_off(run, share(run.fleet, 0.1), run.args.blip)
    await asyncio.sleep(max(0.0, STALE + GRACE + 2 * INTERVAL - run.args.blip))
    return outcome


async def cut_off(run: Run, cut: list[Daemon], seconds: float) -> Outcome:
    began = await in_thread(db_now)
    for daemon in cut:
        daemon.paused_until = time.monotonic() + seconds
    await asyncio.sleep(seconds + HEARTBEAT + 1)
    return Outcome(began, cut, began)


async def sixty(run: Run) -> Outcome:
    """60% of the daemons die at once, the rest beat on: more than the brake's fraction."""
    return await dying_at_once(run, share(run.fleet, 0.6))


async def everyone(run: Run) -> Outcome:
    return await dying_at_once(run, run.fleet)


async def dying_at_once(run: Run, dying: list[Daemon]) -> Outcome:
    """`dying` die; waits until the sweeper has marked them and either failed their tasks or
    held them with the brake (then watches the brake hold)."""
    began = await in_thread(db_now)
    await asyncio.gather(*(daemon.die() for daemon in dying))
    ids = runtime_ids(dying)
    deadline = time.monotonic() + STALE + GRACE + 6 * INTERVAL + 10
    while time.monotonic() < deadline:
        verdicts = await in_thread(verdicts_since, began, ids)
        held_or_failed = verdicts.brake or len(verdicts.failed) == len(ids)
        if len(verdicts.offline) == len(ids) and held_or_failed:
            break
        await asyncio.sleep(1)
    if verdicts.brake:
        await asyncio.sleep(HOLD_SECONDS)
    return Outcome(began, dying, began)


SCENARIOS = {
    "web": web,
    "web+deaths": web_deaths,
    "database": database,
    "workers": sweepers,
    "partial": partial,
    "blip": blip,
    "sixty": sixty,
    "all": everyone,
}
