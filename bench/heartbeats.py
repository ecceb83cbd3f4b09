"""Heartbeat capacity: the largest rate the daemon API sustains with p99 latency under 100 ms,
served the production way (daphne) on this machine, the load generator beside it.

    DATABASE_URL=postgres://... python bench/heartbeats.py [--rates 100,200,...] [--seconds 10]
                                [--runtimes 10000] [--connections 50] [--workers 1] [--keep]
                                [--server daphne|uvicorn|gunicorn] [--app module:app]

Works only in its own database, `<name>_bench_heartbeats` on the DATABASE_URL server: it creates and
migrates it, registers --runtimes runtimes, starts daphne on 127.0.0.1 against it, and drops it
at the end unless --keep. Load is open-loop (requests leave on schedule whether or not earlier
ones have answered; latency counts from the scheduled time, so queueing is not hidden), spread
over --connections keep-alive connections, each heartbeat for the next runtime in turn. The
baseline, measured in the same run at the same rates, is GET /api/schema/: the same server with
no token check and no database, so the difference is what a heartbeat itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import backends_cpu, cpu_seconds, database_backends, machine_busy, with_children  # noqa: E402
from bench.daemons import Connection  # noqa: E402
from bench.scratch import database_name, scratch_database, setup_django  # noqa: E402

TARGET_P99_MS = 100.0
# The issue's target: 10,000 runtimes each beating every 15 s.
TARGET_RATE = 10_000 / 15


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="100,200,300,400,500,667,800,1000")
    parser.add_argument("--seconds", type=float, default=10.0, help="per step")
    parser.add_argument("--runtimes", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--app", default="multica.asgi:application", help="ASGI application")
    # daphne is the production server; uvicorn and gunicorn (WSGI; neither of them in
    # requirements.txt) for comparison.
    parser.add_argument("--server", choices=["daphne", "uvicorn", "gunicorn"], default="daphne")
    parser.add_argument("--port", type=int, default=18_700)
    # Under ASGI every request runs in a thread of its own, so a persistent connection is
    # never reused: it lingers until garbage collection and PostgreSQL runs out of slots.
    parser.add_argument("--conn-max-age", type=int, default=0, help="CONN_MAX_AGE for daphne")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    return parser.parse_args()


# --- the database and the server ---------------------------------------------------------------


FILL = """
INSERT INTO agent_runtime (id, workspace_id, name, daemon_id, provider, device_name, version,
                           status, last_seen_at, offline_at, metadata, created_at)
SELECT gen_random_uuid(), %(workspace_id)s, 'runtime ' || k, 'daemon-' || k, 'claude',
       'host-' || k, '1.0', 'online', now(), NULL, '{}', now()
FROM generate_series(1, %(n)s) AS k;
ANALYZE agent_runtime;
"""


def prepare(url: str, runtimes: int) -> tuple[str, list[str]]:
    """Migrates the bench database and fills it; returns a token and the runtime ids."""
    setup_django(url)
    from django.db import connection

    from runtimes.models import AgentRuntime, Workspace
    from runtimes.tokens import issue_token

    workspace = Workspace.objects.create(name="heartbeat bench")
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"workspace_id": workspace.id, "n": runtimes})
    ids = [str(i) for i in AgentRuntime.objects.values_list("id", flat=True)]
    token = issue_token(workspace=workspace)[1]
    connection.close()
    return token, ids


def driver_name() -> str:
    from django.db import connection

    return f"{connection.Database.__name__} {connection.Database.__version__.split()[0]}" + (
        ", pooled" if connection.settings_dict["OPTIONS"].get("pool") else ""
    )


def start_servers(url: str, args) -> list[subprocess.Popen]:
    """daphne as in production (DEBUG off). Several processes share one listening socket,
    handed to each with --fd, and the kernel spreads the connections among them."""
    listener = socket.create_server(("127.0.0.1", args.port), backlog=4096)
    listener.set_inheritable(True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only",
        "CONN_MAX_AGE": str(args.conn_max_age),
    }
    server = str(Path(sys.executable).parent / args.server)
    fd = str(listener.fileno())
    command = [server, "--fd", fd, args.app]
    if args.server == "uvicorn":
        command.insert(1, "--no-access-log")
    if args.server == "gunicorn":  # one master forking --workers WSGI processes
        wsgi = "django.core.wsgi:get_wsgi_application()"
        workers = ["--workers", str(args.workers), "-k", "gthread", "--threads", "8"]
        command, args.workers = [server, "--bind", f"fd://{fd}", *workers, wsgi], 1
    servers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            pass_fds=[listener.fileno()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    listener.close()
    try:
        wait_until_up(args.port)
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
        server.wait(10)


def wait_until_up(port: int, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not come up")


# --- load ---------------------------------------------------------------------------------------


async def step(port, token, rate, seconds, connections, request) -> dict:
    """Sends `rate` requests a second for `seconds`; returns latencies and errors."""
    queue: asyncio.Queue = asyncio.Queue()
    latencies, errors = [], [0]
    first_error = None
    total = int(rate * seconds)

    async def worker(conn: Connection):
        nonlocal first_error
        while (scheduled := await queue.get()) is not None:
            method, path, body = request()
            try:
                status, answer = await conn.request(method, path, body)
                if status != 200:
                    errors[0] += 1
                    first_error = first_error or f"{status} {str(answer)[:200]}"
            except (OSError, asyncio.IncompleteReadError):
                errors[0] += 1
            latencies.append(time.monotonic() - scheduled)

    conns = [Connection(f"http://127.0.0.1:{port}", token) for _ in range(connections)]
    workers = [asyncio.create_task(worker(c)) for c in conns]
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - start
    for conn in conns:
        await conn.close()
    if first_error:
        print(f"first error: {first_error}", file=sys.stderr)
    return {"latencies": latencies, "errors": errors[0], "elapsed": elapsed, "sent": total}


def measure(args, token, runtime_ids, servers, rate, kind) -> dict:
    server_pids = with_children([s.pid for s in servers])
    turn = iter(range(10**12))

    def heartbeat():
        return (
            "POST",
            "/api/daemon/heartbeat",
            {"runtime_id": runtime_ids[next(turn) % len(runtime_ids)]},
        )

    def schema():
        return "GET", "/api/schema/", None

    request = heartbeat if kind == "heartbeat" else schema
    backends = database_backends(args.db_name)
    before = (cpu_seconds(server_pids), time.process_time(), machine_busy())
    pg_before = {pid: backends_cpu([pid]) for pid in backends}
    result = asyncio.run(step(args.port, token, rate, args.seconds, args.connections, request))
    after = (cpu_seconds(server_pids), time.process_time(), machine_busy())
    pg_after = {pid: backends_cpu([pid]) for pid in database_backends(args.db_name)}
    pg = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    wall = result["elapsed"]
    lat = sorted(result["latencies"])
    return {
        "kind": kind,
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
    f"{'request':<10}{'target/s':>9}{'done/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    f"{'errors':>7}{'server%':>9}{'loadgen%':>9}{'pg%':>6}{'other%':>8}{'machine%':>9}  ok"
)


def show(row: dict) -> None:
    rest = row["machine"] - row["server_cpu"] - row["load_cpu"] - row["pg_cpu"]
    print(
        f"{row['kind']:<10}{row['rate']:>9.0f}{row['achieved']:>9.0f}{row['p50']:>9.1f}"
        f"{row['p99']:>9.1f}{row['max']:>9.0f}{row['errors']:>7}{row['server_cpu']:>9.0f}"
        f"{row['load_cpu']:>9.0f}{row['pg_cpu']:>6.0f}{rest:>8.0f}{row['machine']:>9.0f}  "
        f"{'yes' if sustained(row) else 'NO'}",
        flush=True,
    )


def run_steps(args, token, runtime_ids, servers, kind) -> list[dict]:
    rows, misses = [], 0
    for rate in [float(r) for r in args.rates.split(",")]:
        row = measure(args, token, runtime_ids, servers, rate, kind)
        show(row)
        rows.append(row)
        misses = 0 if sustained(row) else misses + 1
        if misses == 2:  # two misses in a row: past the knee, stop loading the machine
            break
    return rows


def run(args, token, runtime_ids, servers) -> None:
    print(
        f"{args.runtimes} runtimes, {args.connections} connections, "
        f"{args.workers} {args.server}, DB driver {driver_name()}, "
        f"CONN_MAX_AGE={args.conn_max_age}, {args.seconds:.0f} s a step, "
        f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.1f}\n{HEADER}",
        flush=True,
    )
    rows = run_steps(args, token, runtime_ids, servers, "heartbeat")
    if args.baseline:
        run_steps(args, token, runtime_ids, servers, "schema")
    best = max((r["rate"] for r in rows if sustained(r)), default=0)
    print(
        f"\nlargest sustained heartbeat rate: {best:.0f}/s (p99 < {TARGET_P99_MS:.0f} ms); "
        f"target {TARGET_RATE:.0f}/s: {'met' if best >= TARGET_RATE else 'NOT met'}"
    )


def main() -> None:
    args = parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1/multica")
    with scratch_database("_bench_heartbeats", keep=args.keep, url=server_url) as url:
        args.db_name = database_name(url)
        token, runtime_ids = prepare(url, args.runtimes)
        servers = start_servers(url, args)
        try:
            run(args, token, runtime_ids, servers)
        finally:
            stop_servers(servers)


if __name__ == "__main__":
    main()
