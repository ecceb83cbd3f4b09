"""Verdicts when the platform fails, with real processes: simulated daemons (tools/daemons.py)
beat over HTTP against the web process, a Celery worker and beat, each daemon holding a
running task, while the platform or the fleet fails; a row a scenario says what the sweeper
did about it.

    python -m bench.fleet [--daemons 150] [--outage 10] [--partition 60]
                          [--scenarios web,web+deaths,database,partial,all]
                          [--guards off,on] [--logs DIR]

Runs on a PostgreSQL and a Redis broker of its own (tools/servers.py; PostgreSQL's programs
from `pg_config`), so that stopping the database takes no one else's down; the channel layer
uses REDIS_URL. Short thresholds: heartbeat 2 s, stale 6 s, a sweep every 2 s, reconnect
grace 30 s. Each scenario has a fresh fleet in a workspace of its own:
  web       the web process killed (SIGKILL, with its workers) for --outage s, then restarted
  web+deaths  the same, and 10% of the daemons die while it is down: found once the
            platform hears again (their times count from the restart)
  database  PostgreSQL stopped (fast shutdown) for --outage s, then started
  partial   10% of the daemons stop beating for --partition s, then beat again: a real
            partition, whose runtimes go offline and whose tasks fail after stale + grace
  all       every daemon dies
Guards "on" is the product as configured; "off" is the same processes with the reconnect
grace 0 and SWEEP_BRAKE_MIN_RUNTIMES above any fleet (no fleet silence, no brake), which is
how the sweeper judged before those guards. The gap-between-sweeps guard has no switch: a
database outage longer than the stale threshold stops the sweeps too, so the "off" row of
`database` shows that guard alone.

Columns: live runtimes the sweeper marked offline, and live runtimes one of whose tasks it
failed (of the live ones); whether and when the brake engaged; of the daemons that really
stopped, how many runtimes were marked offline and how many seconds after they stopped (after
the platform could hear again, for web+deaths; p50/max), and how many had their task failed,
and when; the reasons of every task failed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.common import arguments, django_database
from tools import servers
from tools.daemon import Daemon
from tools.outages import (
    Platform,
    closing,
    db_now,
    in_thread,
    leave,
    record_verdicts,
    verdicts_since,
    working_fleet,
)

HEARTBEAT, STALE, INTERVAL, GRACE = 2, 6, 2, 30
SETTINGS = {
    "RUNTIME_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "RUNTIME_STALE_SECONDS": str(STALE),
    "SWEEP_INTERVAL_SECONDS": str(INTERVAL),
    "DEBUG": "0",
}
GUARDS = {
    "on": {"RUNTIME_RECONNECT_GRACE_SECONDS": str(GRACE), "SWEEP_BRAKE_MIN_RUNTIMES": "20"},
    "off": {"RUNTIME_RECONNECT_GRACE_SECONDS": "0", "SWEEP_BRAKE_MIN_RUNTIMES": str(10**9)},
}
# After the platform hears again: long enough for any runtime it wrongly judged stale to be
# marked (stale threshold from then, and a sweep or two more).
SETTLE_SECONDS = STALE + 3 * INTERVAL + HEARTBEAT + 1
# How long the brake must hold a dead fleet's tasks to count as holding them.
HOLD_SECONDS = 15


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--daemons", type=int, default=150)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds")
    parser.add_argument("--partition", type=float, default=60.0, help="seconds")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--guards", default="off,on")
    parser.add_argument("--logs", help="keep the processes' logs in this directory")
    return parser.parse_args()


@dataclass
class Run:
    args: object
    platform: Platform
    postgres: servers.PostgresServer
    fleet: list[Daemon]


# --- the scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    began: datetime  # when the failure began (database clock): verdicts are read from then
    dead: list[Daemon]  # the daemons that really stopped
    heard: datetime  # when the platform could hear them again: their detection counts from then


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
    dying = run.fleet[: max(1, len(run.fleet) // 10)]
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


async def partial(run: Run) -> Outcome:
    cut = run.fleet[: max(1, len(run.fleet) // 10)]
    began = await in_thread(db_now)
    for daemon in cut:
        daemon.paused_until = time.monotonic() + run.args.partition
    await asyncio.sleep(run.args.partition + HEARTBEAT + 1)
    return Outcome(began, cut, began)


async def everyone(run: Run) -> Outcome:
    """The whole fleet dies; waits until the sweeper has marked it and either failed its
    tasks or held them with the brake (then watches the brake hold)."""
    began = await in_thread(db_now)
    await asyncio.gather(*(daemon.die() for daemon in run.fleet))
    ids = runtime_ids(run.fleet)
    deadline = time.monotonic() + STALE + GRACE + 6 * INTERVAL + 10
    while time.monotonic() < deadline:
        verdicts = await in_thread(verdicts_since, began, ids)
        held_or_failed = verdicts.brake or len(verdicts.failed) == len(ids)
        if len(verdicts.offline) == len(ids) and held_or_failed:
            break
        await asyncio.sleep(1)
    if verdicts.brake:
        await asyncio.sleep(HOLD_SECONDS)
    return Outcome(began, run.fleet, began)


SCENARIOS = {
    "web": web,
    "web+deaths": web_deaths,
    "database": database,
    "partial": partial,
    "all": everyone,
}


# --- the rows -------------------------------------------------------------------------------------


def runtime_ids(fleet: list[Daemon]) -> list[str]:
    return [runtime_id for daemon in fleet for runtime_id in daemon.runtime_ids]


def after(times: list[datetime], began: datetime) -> str:
    """p50/max seconds from `began`."""
    if not times:
        return "-"
    seconds = [(t - began).total_seconds() for t in times]
    return f"{statistics.median(seconds):.1f}/{max(seconds):.1f}"


def row(name: str, guards: str, run: Run, outcome: Outcome) -> str:
    live = runtime_ids([daemon for daemon in run.fleet if daemon not in outcome.dead])
    gone = runtime_ids(outcome.dead)
    began, heard = outcome.began, outcome.heard
    verdicts = verdicts_since(began, live + gone)
    found = [verdicts.offline[r] for r in gone if r in verdicts.offline]
    failed = [verdicts.failed[r] for r in gone if r in verdicts.failed]
    brake = f"at {(verdicts.brake - began).total_seconds():.0f} s" if verdicts.brake else "no"
    return (
        f"{name:<11}{guards:<6}"
        f"{sum(r in verdicts.offline for r in live):>5}/{len(live):<5}"
        f"{sum(r in verdicts.failed for r in live):>5}/{len(live):<5}{brake:>9}"
        f"{len(found):>6}/{len(gone):<5}{after(found, heard):>12}"
        f"{len(failed):>6}/{len(gone):<5}{after(failed, heard):>12}"
        f"  {' '.join(f'{k}:{v}' for k, v in sorted(verdicts.reasons.items())) or '-'}"
    )


HEADER = (
    f"{'':<17}{'live runtimes':^22}{'':>9}{'runtimes that really stopped':^46}\n"
    f"{'scenario':<11}{'guards':<6}{'offline':>11}{'failed':>11}{'brake':>9}"
    f"{'offline':>12}{'after s':>12}{'failed':>12}{'after s':>12}  tasks failed, by reason"
)


async def scenarios(args, env: dict, postgres, logs: Path) -> None:
    names = args.scenarios.split(",")
    names.sort(key=lambda name: name == "all")  # the dead fleet's brake stays engaged
    for guards in args.guards.split(","):
        platform = Platform({**env, **GUARDS[guards]}, logs)
        await asyncio.to_thread(platform.start)
        try:
            for name in names:
                ready = await in_thread(db_now)
                fleet = await working_fleet(
                    platform.base, args.daemons, heartbeat_seconds=HEARTBEAT
                )
                # Steady state: every runtime has beaten since, and the sweeper swept.
                await asyncio.sleep(STALE)
                run = Run(args, platform, postgres, fleet)
                outcome = await SCENARIOS[name](run)
                print(await in_thread(row, name, guards, run, outcome), flush=True)
                before = await in_thread(verdicts_since, ready, runtime_ids(fleet))
                if wrong := sum(at < outcome.began for at in before.offline.values()):
                    print(f"  ({wrong} runtimes marked offline before the scenario began)")
                await leave(fleet)
        except BaseException:
            print(platform.tail())
            raise
        finally:
            platform.stop()


def main() -> None:
    args = parse_args()
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    unknown |= set(args.guards.split(",")) - set(GUARDS)
    if unknown:
        raise SystemExit(f"unknown scenario or guards: {', '.join(sorted(unknown))}")
    with (
        servers.postgres_server() as postgres,
        servers.redis_server() as broker,
        tempfile.TemporaryDirectory(prefix="fleet-") as scratch,
    ):
        logs = Path(args.logs or scratch)
        logs.mkdir(parents=True, exist_ok=True)
        os.environ["DATABASE_URL"] = postgres.url
        with django_database("_bench_fleet", keep=False) as url:
            closing(record_verdicts)
            env = servers.production_env(**SETTINGS, DATABASE_URL=url, CELERY_BROKER_URL=broker.url)
            print(
                f"{args.daemons} daemons, heartbeat {HEARTBEAT} s, stale {STALE} s, a sweep every"
                f" {INTERVAL} s, grace {GRACE} s (guards on), outage {args.outage:.0f} s,"
                f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n{HEADER}",
                flush=True,
            )
            asyncio.run(scenarios(args, env, postgres, logs))


if __name__ == "__main__":
    main()
