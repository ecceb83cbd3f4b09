"""Heartbeat capacity: the largest rate the daemon API sustains with p99 latency under 100 ms,
served the production way (granian, `python -m multica.web`) on this machine, the load
generator beside it; daphne serving the same API, as it did before, is the baseline.

    DATABASE_URL=postgres://... python -m bench.heartbeats [--rates 100,200,...] [--seconds 10]
                                [--runtimes 10000] [--connections 50] [--fresh-connections]
                                [--servers granian,daphne] [--nginx] [--schema]
                                [--running-tasks 0,6] [--keep]

--servers granian-uncounted,granian compares the web process without and with the heartbeat
count of /metrics (METRICS_HEARTBEATS).

Works only in its own database, `<name>_bench_heartbeats` on the DATABASE_URL server: it creates and
migrates it, registers --runtimes runtimes, starts each server in turn on 127.0.0.1 against it,
and drops it at the end unless --keep. Load is open-loop (requests leave on schedule whether or
not earlier ones have answered; latency counts from the scheduled time, so queueing is not
hidden), each heartbeat for the next runtime in turn, over --connections keep-alive connections
opened before timing starts (--connections 10000 --nginx is a fleet of 10,000 daemons, each
keeping its connection to the proxy), or with --fresh-connections one TCP connection per
request. WEB_WORKERS and WEB_THREADS in the environment reach the web process as in production.
--nginx puts nginx in front with docker-compose.yml's proxy config, as in production (needs an
nginx binary). --schema adds GET /api/schema/ on the first server: no token check and no
database, so the difference is what a heartbeat itself costs. --running-tasks 0,6 adds, for
each number N, heartbeats that list their runtime's N running tasks (`running_task_ids`, the
leases), each N on --runtimes runtimes of its own that hold that many, already vouched for (a
fleet whose lists do not change). The requests of one server are measured in turns at each
rate, so that a change in the machine's load falls on all of them alike.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from bench.common import (
    VACUUM,
    World,
    arguments,
    database_name,
    django_database,
    fill,
    fill_tasks,
    serving,
)
from bench.cpu import backends_cpu, cpu_seconds, database_backends, machine_busy
from common.sql import fetch
from tools.connection import Connection
from tools.servers import nginx, with_children

TARGET_P99_MS = 100.0
# The issue's target: 10,000 runtimes each beating every 15 s.
TARGET_RATE = 10_000 / 15
WARM_UP_RATE, WARM_UP_SECONDS = 50, 3
CONNECT_BATCH = 200


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--rates", default="100,200,300,400,500,667,800,1000,1200,1400")
    parser.add_argument("--seconds", type=float, default=10.0, help="per step")
    parser.add_argument("--runtimes", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--fresh-connections", action="store_true", help="a new TCP connection per request"
    )
    parser.add_argument("--servers", default="granian,daphne", help="of: " + ", ".join(SERVERS))
    parser.add_argument("--schema", action="store_true", help="also GET /api/schema/")
    parser.add_argument("--nginx", action="store_true", help="behind the production proxy")
    parser.add_argument("--port", type=int, default=18_700)
    parser.add_argument(
        "--running-tasks", default="", help="comma-separated: heartbeats listing this many tasks"
    )
    return parser.parse_args()


# --- the database and the server ---------------------------------------------------------------


# One workspace of online runtimes, fresh, without agents or tasks.
WORLD = World(workspace="0", device_name="'host-' || k", version="'1.0'", agents=False)

# N running tasks on each runtime k of lo..hi-1, vouched for by earlier heartbeats.
RUNNING = """
SELECT k, 'running' AS status, now() AS created_at, now() AS dispatched_at,
       now() AS started_at, NULL::timestamptz AS completed_at, '' AS error, '' AS failure_reason
FROM generate_series(%(lo)s, %(hi)s - 1) AS k, generate_series(1, %(n)s) AS i
"""
BODIES = """
SELECT r.id::text AS runtime_id,
       ARRAY(SELECT t.id::text FROM agent_task AS t WHERE t.runtime_id = r.id) AS task_ids
FROM generate_series(%(lo)s, %(hi)s - 1) AS k JOIN agent_runtime AS r ON r.id = md5('rt' || k)::uuid
ORDER BY k
"""


def prepare(runtimes: int, running_tasks: list[int]) -> tuple[str, dict[str, list[dict]]]:
    """Fills the bench database; returns a token and the heartbeat bodies of each kind:
    "heartbeat" without the leases field, and "leases:N" listing N tasks, on runtimes of
    their own (`runtimes` each)."""
    from django.db import connection

    from runtimes.models import Workspace
    from runtimes.tokens import issue_token

    groups = [None, *running_tasks]
    fill(replace(WORLD, agents=bool(running_tasks)), 0, runtimes * len(groups))
    bodies = {}
    for i, n in enumerate(groups):
        lo, hi = i * runtimes, (i + 1) * runtimes
        if n:
            fill_tasks(RUNNING, lo=lo, hi=hi, n=n)
        rows = fetch(BODIES, lo=lo, hi=hi)
        if n is None:
            bodies["heartbeat"] = [{"runtime_id": row.runtime_id} for row in rows]
        else:
            bodies[f"leases:{n}"] = [
                {"runtime_id": row.runtime_id, "running_task_ids": row.task_ids} for row in rows
            ]
    fetch("UPDATE agent_task SET leased = true")
    fetch(VACUUM)
    token = issue_token(workspace=Workspace.objects.get())[1]
    connection.close()
    return token, bodies


SERVERS = {
    # Production: README's web process (multica/web.py).
    "granian": "web",
    # The same without counting heartbeats for /metrics: what counting costs.
    "granian-uncounted": "web",
    # The whole app on ASGI, as the WebSocket process runs it.
    "daphne": "ws",
}

SERVER_ENV = {"granian-uncounted": {"METRICS_HEARTBEATS": "0"}}


@contextmanager
def serving_as_in_production(name: str, args) -> Iterator[list[int]]:
    """Runs the server as in production (DEBUG off), with --nginx behind docker-compose.yml's
    proxy config; yields the pids whose CPU is the server's."""
    port = args.port + 1 if args.nginx else args.port
    with serving(SERVERS[name], port=port, env=SERVER_ENV.get(name, {})) as (server, _):
        if args.nginx:
            # Without the per-address rate limits: the whole simulated fleet is one address.
            with nginx(args.port, port, port, limits=False) as proxy:
                yield [server.pid, proxy.pid]
        else:
            yield [server.pid]


# --- load ---------------------------------------------------------------------------------------


class Load:
    """The load generator: --connections connections, kept across steps on one event loop, as
    a fleet's are (unless --fresh-connections), and the next request to send."""

    def __init__(self, args, token: str, bodies: list[dict] | None):
        """Heartbeats with `bodies` in turn, or with None GET /api/schema/."""
        self.args, self.loop = args, asyncio.new_event_loop()
        base = f"http://127.0.0.1:{args.port}"
        self.conns = [Connection(base, token) for _ in range(args.connections)]
        self.turn = iter(range(10**12))
        self.next_conn = 0  # steps carry on round the connections where the last one stopped
        if bodies is not None:
            self.request = lambda: (
                "POST",
                "/api/daemon/heartbeat",
                bodies[next(self.turn) % len(bodies)],
            )
        else:
            self.request = lambda: ("GET", "/api/schema/", None)

    def open(self) -> None:
        """Untimed: each connection opened and used once, as a fleet's are before it is
        measured. (nginx turns Nagle's algorithm off only after a connection's first request,
        so a first response may wait 40 ms for the client's delayed ACK.) A few hundred at a
        time: a burst of thousands would overflow the listen backlog."""

        async def batches():
            for i in range(0, len(self.conns), CONNECT_BATCH):
                batch = self.conns[i : i + CONNECT_BATCH]
                await asyncio.gather(*(conn.request(*self.request()) for conn in batch))

        if not self.args.fresh_connections:
            self.loop.run_until_complete(batches())

    def close(self) -> None:
        async def close_all():
            await asyncio.gather(*(conn.close() for conn in self.conns))

        self.loop.run_until_complete(close_all())
        self.loop.close()

    def step(self, rate: float, seconds: float) -> dict:
        return self.loop.run_until_complete(self._step(rate, seconds))

    async def _step(self, rate: float, seconds: float) -> dict:
        """Sends `rate` requests a second for `seconds`; returns latencies and errors."""
        queue: asyncio.Queue = asyncio.Queue()
        latencies, errors = [], [0]
        first_error = None
        total = int(rate * seconds)

        async def worker(conn: Connection):
            nonlocal first_error
            while (scheduled := await queue.get()) is not None:
                try:
                    status, answer = await conn.request(*self.request())
                    if status != 200:
                        errors[0] += 1
                        first_error = first_error or f"{status} {str(answer)[:200]}"
                except (OSError, asyncio.IncompleteReadError):
                    errors[0] += 1
                latencies.append(time.monotonic() - scheduled)
                if self.args.fresh_connections:
                    await conn.close()

        # Idle workers take requests in the order they started waiting: round the connections.
        n = self.next_conn
        workers = [asyncio.create_task(worker(c)) for c in self.conns[n:] + self.conns[:n]]
        self.next_conn = (n + total) % len(self.conns)
        start = time.monotonic()
        for i in range(total):
            due = start + i / rate
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(due)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        if first_error:
            print(f"first error: {first_error}", file=sys.stderr)
        return {"latencies": latencies, "errors": errors[0], "elapsed": time.monotonic() - start}


def measure(args, load: Load, pids, rate, seconds=None) -> dict:
    server_pids = with_children(pids)
    backends = database_backends(args.db_name)
    before = (cpu_seconds(server_pids), time.process_time(), machine_busy())
    pg_before = {pid: backends_cpu([pid]) for pid in backends}
    result = load.step(rate, seconds or args.seconds)
    after = (cpu_seconds(server_pids), time.process_time(), machine_busy())
    pg_after = {pid: backends_cpu([pid]) for pid in database_backends(args.db_name)}
    pg = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    wall = result["elapsed"]
    lat = sorted(result["latencies"])
    return {
        "rate": rate,
        "achieved": len(lat) / wall,
        "p50": 1000 * statistics.median(lat),
        "p99": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "max": 1000 * lat[-1],
        "errors": result["errors"],
        "server_cpu": 100 * (after[0] - before[0]) / wall,
        "load_cpu": 100 * (after[1] - before[1]) / wall,
        "pg_cpu": 100 * pg / wall,
        # In % of one CPU, like the others: all CPUs are os.cpu_count() * 100.
        "machine": 100
        * os.cpu_count()
        * (after[2][0] - before[2][0])
        / max(1, after[2][1] - before[2][1]),
    }


def sustained(row: dict) -> bool:
    return (
        row["errors"] == 0 and row["p99"] < TARGET_P99_MS and row["achieved"] >= 0.97 * row["rate"]
    )


HEADER = (
    f"{'server':<9}{'request':<10}{'target/s':>9}{'done/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'max ms':>9}{'errors':>7}{'server%':>9}{'loadgen%':>9}{'pg%':>6}{'other%':>8}"
    f"{'machine%':>9}  ok"
)


def show(name: str, kind: str, row: dict) -> None:
    rest = row["machine"] - row["server_cpu"] - row["load_cpu"] - row["pg_cpu"]
    print(
        f"{name:<9}{kind:<10}{row['rate']:>9.0f}{row['achieved']:>9.0f}{row['p50']:>9.1f}"
        f"{row['p99']:>9.1f}{row['max']:>9.0f}{row['errors']:>7}{row['server_cpu']:>9.0f}"
        f"{row['load_cpu']:>9.0f}{row['pg_cpu']:>6.0f}{rest:>8.0f}{row['machine']:>9.0f}  "
        f"{'yes' if sustained(row) else 'NO'}",
        flush=True,
    )


def run_steps(args, token, name, pids, kinds: dict[str, list[dict] | None]) -> dict[str, float]:
    """Steps the rate up, each kind of request in turn at each rate, until each has fallen
    behind; returns the largest rate each sustained."""
    loads = {kind: Load(args, token, bodies) for kind, bodies in kinds.items()}
    best, misses = dict.fromkeys(kinds, 0.0), dict.fromkeys(kinds, 0)
    try:
        for load in loads.values():
            load.open()
        # The collector's full passes over a fleet's worth of connection objects stalled the
        # load generator for tens of milliseconds, which counted as the server's latency.
        gc.freeze()
        # Unmeasured: every server thread opens its database connection and imports what it
        # lazily imports, which would otherwise land in the first step's latencies.
        for load in loads.values():
            load.step(WARM_UP_RATE, WARM_UP_SECONDS)
        for rate in [float(r) for r in args.rates.split(",")]:
            # Two misses in a row: past the knee, stop loading the machine with that kind.
            for kind in [kind for kind in kinds if misses[kind] < 2]:
                row = measure(args, loads[kind], pids, rate)
                show(name, kind, row)
                if sustained(row):
                    best[kind], misses[kind] = max(best[kind], rate), 0
                else:
                    misses[kind] += 1
            if all(miss == 2 for miss in misses.values()):
                break
    finally:
        for load in loads.values():
            load.close()
    return best


def run(args, token, bodies: dict[str, list[dict]]) -> None:
    threads = os.environ.get("WEB_THREADS") or 4
    processes = os.environ.get("WEB_WORKERS") or 2
    print(
        f"{args.runtimes} runtimes, {args.connections} "
        f"{'fresh connections' if args.fresh_connections else 'keep-alive connections'}"
        f"{' to nginx' if args.nginx else ''}, "
        f"web process {processes} x {threads} threads, {args.seconds:.0f} s a step, "
        f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.1f}\n{HEADER}",
        flush=True,
    )
    best = {}
    for i, name in enumerate(args.servers.split(",")):
        kinds: dict[str, list[dict] | None] = dict(bodies)
        if args.schema and i == 0:
            kinds["schema"] = None
        with serving_as_in_production(name, args) as pids:
            for kind, rate in run_steps(args, token, name, pids, kinds).items():
                best[name, kind] = rate
    print(f"\nlargest sustained rate (p99 < {TARGET_P99_MS:.0f} ms, no errors):")
    for (name, kind), rate in best.items():
        verdict = "met" if rate >= TARGET_RATE else "NOT met"
        baseline = best[name, "heartbeat"]
        ratio = f"  {rate / baseline:.2f} x heartbeat" if kind != "heartbeat" and baseline else ""
        print(f"  {name:<9}{kind:<10}{rate:>6.0f}/s   target {TARGET_RATE:.0f}/s: {verdict}{ratio}")


def main() -> None:
    args = parse_args()
    unknown = set(args.servers.split(",")) - set(SERVERS)
    if unknown:
        raise SystemExit(f"--servers: unknown {', '.join(sorted(unknown))}")
    with django_database("_bench_heartbeats", keep=args.keep) as url:
        args.db_name = database_name(url)
        running_tasks = [int(n) for n in args.running_tasks.split(",") if n.strip()]
        token, bodies = prepare(args.runtimes, running_tasks)
        run(args, token, bodies)


if __name__ == "__main__":
    main()
