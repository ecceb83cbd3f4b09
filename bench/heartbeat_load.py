"""The load generator of bench.heartbeats: open-loop heartbeats (or GET /api/schema/) at a
rate, over connections kept across steps as a fleet's are, with the CPU each side spent.

Requests leave on schedule whether or not earlier ones have answered, and latency counts from
the scheduled time, so that queueing is not hidden.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from bench.cpu import backends_cpu, cpu_seconds, database_backends, machine_busy
from tools.connection import Connection
from tools.servers import with_children

CONNECT_BATCH = 200


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
