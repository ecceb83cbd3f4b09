"""Verdicts when the platform fails, with real processes: simulated daemons (tools.daemon)
beat over HTTP against the web process, a Celery worker and beat, each daemon holding a
running task, while the platform or the fleet fails; a row a scenario says what the sweeper
did about it (the scenarios are bench.fleet_scenarios).

    python -m bench.fleet [--daemons 150] [--outage 10] [--partition 60] [--blip 9]
                          [--scenarios web,web+deaths,database,workers,partial,blip,sixty,all]
                          [--guards off,on] [--logs DIR]

Runs on a PostgreSQL and a Redis broker of its own (tools/servers.py; PostgreSQL's programs
from `pg_config`), so that stopping the database takes no one else's down; the channel layer
uses REDIS_URL. Short thresholds: heartbeat 2 s, stale 6 s, a sweep every 2 s, reconnect
grace 30 s. Each scenario has a fresh fleet in a workspace of its own:
  web       the web process killed (SIGKILL, with its workers) for --outage s, then restarted
  web+deaths  the same, and 10% of the daemons die while it is down: found once the
            platform hears again (their times count from the restart)
  database  PostgreSQL stopped (fast shutdown) for --outage s, then started
  workers   the worker and beat killed for 3 x stale (no sweep at all), then started
            (times count from the first sweep after)
  partial   10% of the daemons stop beating for --partition s, then beat again: a real
            partition, whose runtimes go offline and whose tasks fail after stale + grace
  blip      10% of the daemons stop beating for --blip s (stale + 3 s), then beat again,
            within the grace: their runtimes go offline and come back, their tasks go on
  sixty     60% of the daemons die at once, the rest beat on: more than the brake's fraction
  all       every daemon dies
Guards "on" is the product as configured; "off" is the same processes with the reconnect
grace 0 and SWEEP_BRAKE_MIN_RUNTIMES above any fleet (no fleet silence, no brake), which is
how the sweeper judged before those guards. The gap-between-sweeps guard has no switch: a
database outage longer than the stale threshold stops the sweeps too, so the "off" rows of
`database` and `workers` show that guard alone.

Columns: live runtimes the sweeper marked offline, and live runtimes one of whose tasks it
failed (of the live ones); whether and when the brake engaged; of the daemons that stopped
beating (died, or cut off for a while), how many runtimes were marked offline and how many
seconds after they stopped (after the platform could hear again, for web+deaths; p50/max),
how many had their task failed, and when, and how many are online again at the end; the
reasons of every task failed. In `blip` a stopped daemon's failed task is a wrong verdict:
it came back within the grace.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from bench.common import arguments, django_database
from bench.fleet_scenarios import (
    GRACE,
    HEARTBEAT,
    INTERVAL,
    SCENARIOS,
    STALE,
    Outcome,
    Run,
    runtime_ids,
)
from tools import servers
from tools.outages import (
    Platform,
    closing,
    db_now,
    in_thread,
    leave,
    online_now,
    record_verdicts,
    verdicts_since,
    working_fleet,
)

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


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--daemons", type=int, default=150)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds")
    parser.add_argument("--partition", type=float, default=60.0, help="seconds")
    parser.add_argument("--blip", type=float, default=STALE + 3.0, help="seconds")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--guards", default="off,on")
    parser.add_argument("--logs", help="keep the processes' logs in this directory")
    return parser.parse_args()


# --- the rows -------------------------------------------------------------------------------------


def after(times: list[datetime], began: datetime) -> str:
    """p50/max seconds from `began`."""
    if not times:
        return "-"
    seconds = [(t - began).total_seconds() for t in times]
    return f"{statistics.median(seconds):.1f}/{max(seconds):.1f}"


def row(name: str, guards: str, run: Run, outcome: Outcome) -> str:
    live = runtime_ids([daemon for daemon in run.fleet if daemon not in outcome.stopped])
    gone = runtime_ids(outcome.stopped)
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
        f"{f'{online_now(gone)}/{len(gone)}' if gone else '-':>8}"
        f"  {' '.join(f'{k}:{v}' for k, v in sorted(verdicts.reasons.items())) or '-'}"
    )


HEADER = (
    f"{'':<17}{'live runtimes':^22}{'':>9}{'runtimes that stopped beating':^54}\n"
    f"{'scenario':<11}{'guards':<6}{'offline':>11}{'failed':>11}{'brake':>9}"
    f"{'offline':>12}{'after s':>12}{'failed':>12}{'after s':>12}{'back':>8}"
    "  tasks failed, by reason"
)


async def scenarios(args, env: dict, postgres, logs: Path) -> None:
    names = args.scenarios.split(",")
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
                # A dead fleet's brake stays engaged: the next scenario starts without it.
                await in_thread(release_brake)
                await leave(fleet)
        except BaseException:
            print(platform.tail())
            raise
        finally:
            platform.stop()


def release_brake() -> None:
    from sweeper import state

    state.release_brake(by="bench.fleet")


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
