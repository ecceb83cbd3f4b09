"""Where the CPU went during a benchmark step, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

from common.sql import fetch


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far, from /proc."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = %(name)s AND pid <> pg_backend_pid()"


def database_backends(name: str) -> list[int]:
    """PostgreSQL backends serving the bench database now. A backend that lives for one
    request only (no pooling) is missed, so their share shows up under "other" instead."""
    from django.db import DatabaseError, connection

    try:
        rows = fetch(BACKENDS, name=name)
        pids = [row.pid for row in rows]
    except DatabaseError:  # no slot left: the server under test has taken them all
        pids = []
    connection.close()
    return pids


def backends_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds([pid])
        except OSError:  # gone meanwhile
            continue
    return total


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs: the rest, beyond daphne and the load generator, is
    PostgreSQL (its backends come and go too fast to follow one by one) and anything else
    running on the machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)
