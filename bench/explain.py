"""Every statement a sweep runs, EXPLAINed at two sizes of the sparse world (bench/sweep_worlds.py,
with its long-dead runtimes and history), during a mass outage: the blocks each one reads. A
statement whose cost grows with history reads more at the larger size.

    DATABASE_URL=... python -m bench.explain [--sizes 10000,100000] [--plans] [--keep]

Works only in its own database, `<name>_bench_explain`, which it creates, fills and drops.
Tasks are ten per runtime at each size.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from uuid import UUID

from django.db import connection, transaction

from bench.common import (
    VACUUM,
    arguments,
    close_django_connections,
    django_database,
    fill,
    fill_tasks,
)
from bench.sweep_worlds import OUTAGE, WORKING, worlds
from common.sql import fetch
from runtimes import fleet
from runtimes import queries as runtime_sql
from sweeper import state
from tasks import queries as task_sql

# The baseline: the statement as it was before it was driven from the ids, a join with
# `agent_runtime` that the planner could hash over every offline runtime ever.
JOINED_FAIL_ACTIVE = """
WITH doomed AS (
    SELECT t.id FROM agent_task AS t
    JOIN agent_runtime AS r ON r.id = t.runtime_id
    WHERE t.runtime_id = ANY(%(runtime_ids)s::uuid[])
      AND t.status IN ('dispatched', 'running') AND r.status = 'offline'
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE agent_task AS t
SET status = 'failed', error = %(error)s, failure_reason = 'runtime_offline',
    completed_at = now()
FROM doomed, agent_runtime AS r
WHERE t.id = doomed.id AND r.id = t.runtime_id
  AND t.status IN ('dispatched', 'running') AND r.status = 'offline'
RETURNING t.id, r.workspace_id
"""

STALE = timedelta(hours=1)
CHUNK = 1000
OFFLINE = "UPDATE agent_runtime SET status = 'offline', offline_at = now() WHERE id = ANY(%(ids)s)"
EMPTY = "TRUNCATE workspace, agent_runtime, agent, agent_task, sweeper_state CASCADE"
CHUNK_TASKS = """
SELECT id FROM agent_task WHERE runtime_id = ANY(%(ids)s) AND status IN ('dispatched', 'running')
"""
FAILED = """
UPDATE agent_task SET status = 'failed', failure_reason = 'runtime_offline', completed_at = now()
WHERE id = ANY(%(ids)s)
"""
UNLISTED = """
UPDATE agent_task SET unlisted_since = now() - interval '1 minute'
WHERE status IN ('dispatched', 'running')
"""


def statements(
    ids: list[UUID], agents: list[UUID], tasks: list[UUID]
) -> dict[str, tuple[str, dict]]:
    """Each statement with the parameters a sweep's first chunk of the outage gives it."""
    grace = {"grace": timedelta(0), "judge_stale": True, "stale_after": STALE, "max_attempts": 2}
    stuck = {
        "dispatch_timeout": STALE,
        "running_timeout": STALE,
        "max_running": timedelta(days=1),
        "orphan_grace": timedelta(seconds=30),
        "limit": CHUNK,
        "max_attempts": 2,
        "judge_dispatched": True,
        "judge_running": True,
    }
    return {
        "state READ": (state.READ, {}),
        "fleet HEARING": (fleet.HEARING, {"enough": 20}),
        "fleet STALE_COUNT": (fleet.STALE_COUNT, {"stale_after": STALE}),
        "fleet ONLINE_UP_TO": (fleet.ONLINE_UP_TO, {"up_to": 2 * CHUNK}),
        # Since the brake engaged, a minute ago: the outage's runtimes, not the long dead.
        "fleet STILL_OFFLINE_SINCE": (fleet.STILL_OFFLINE_SINCE, {"since": minute_ago()}),
        "MARK_STALE_OFFLINE": (
            runtime_sql.MARK_STALE_OFFLINE,
            {"stale_after": STALE, "limit": CHUNK},
        ),
        "FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES": (
            task_sql.FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES,
            {"runtime_ids": ids, **grace},
        ),
        "  baseline: the same, joined": (
            JOINED_FAIL_ACTIVE,
            {"runtime_ids": ids, "error": "runtime went offline"},
        ),
        "LOCK_WORKING_AGENTS": (runtime_sql.LOCK_WORKING_AGENTS, {"agent_ids": agents}),
        "IDLE_AGENTS_WITHOUT_WORK": (runtime_sql.IDLE_AGENTS_WITHOUT_WORK, {"agent_ids": agents}),
        "SETTLE_WORK_PENDING": (runtime_sql.SETTLE_WORK_PENDING, {"runtime_ids": ids}),
        "OFFLINE_WITH_WORK_DUE": (
            runtime_sql.OFFLINE_WITH_WORK_DUE,
            {"after": UUID(int=0), "limit": CHUNK, "grace": timedelta(0), "judge_stale": True},
        ),
        # The chunk's tasks failed just before (see `measure`), all with budget left.
        "RETRY_FAILED": (task_sql.RETRY_FAILED, {"task_ids": tasks, "max_attempts": 2}),
        "FAIL_STUCK_TASKS (idle)": (task_sql.FAIL_STUCK_TASKS, stuck),
        # Every live task unlisted for a minute; half the chunk's runtimes offline, whose
        # tasks the orphan rule must leave to the reconnect grace.
        "FAIL_STUCK_TASKS (orphans)": (task_sql.FAIL_STUCK_TASKS, stuck),
    }


def minute_ago():
    return fetch("SELECT now() - interval '1 minute' AS at")[0].at


def blocks(sql: str, params: dict, show: bool) -> tuple[int, float]:
    """Shared blocks read (hit or not) and ms, from EXPLAIN ANALYZE; the plan with `show`."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()[0]
    if show:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
            print("\n".join(row[0][:160] for row in cursor.fetchall()), file=sys.stderr)
    top = plan["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], plan["Execution Time"]


def measure(size: int, show: bool) -> dict[str, tuple[int, float]]:
    spec = worlds(size)["sparse"]
    fetch(EMPTY)
    print(f"filling {size:,} runtimes, {10 * size:,} tasks ...", file=sys.stderr)
    fill(spec.world, 0, size)
    fill_tasks(spec.tasks, lo=0, hi=10 * size, r=size)
    fetch(WORKING)
    # As a sweep leaves them: the long-dead runtimes' work settled, nothing pending.
    fetch("UPDATE agent_runtime SET work_pending = false WHERE status = 'offline'")
    fetch(VACUUM)
    state.read()
    out = {}
    with transaction.atomic():
        fetch(OUTAGE.format(doomed=spec.doomed), stale=STALE)
        picked = fetch(
            "SELECT r.id, a.id AS agent_id FROM bench_runtimes AS b JOIN agent_runtime AS r"
            " USING (id) JOIN agent AS a ON a.runtime_id = r.id ORDER BY r.last_seen_at LIMIT "
            + str(CHUNK)
        )
        ids, agents = [row.id for row in picked], [row.agent_id for row in picked]
        tasks = [row.id for row in fetch(CHUNK_TASKS, ids=ids)]
        for name, (sql, params) in statements(ids, agents, tasks).items():
            # Each one in a savepoint rolled back, so that every statement sees the outage.
            with transaction.atomic():
                if name.startswith(("FAIL_ACTIVE", "  baseline", "SETTLE", "IDLE", "LOCK_WORK")):
                    fetch(OFFLINE, ids=ids)
                elif name == "RETRY_FAILED":
                    fetch(FAILED, ids=tasks)
                elif name == "FAIL_STUCK_TASKS (orphans)":
                    fetch(UNLISTED)
                    fetch(OFFLINE, ids=ids[: len(ids) // 2])
                out[name] = blocks(sql, params, show)
                transaction.set_rollback(True)
        transaction.set_rollback(True)
    return out


def main() -> None:
    explain_at_sizes(__doc__, "_bench_explain", "10000,100000", measure, title=TITLE, unit="rt")


TITLE = f"statement (a chunk of {CHUNK})"


def explain_at_sizes(doc: str, suffix: str, sizes: str, measure, *, title: str, unit: str) -> None:
    """A benchmark's main: `measure(size, show_plans)` at each of `--sizes` in its scratch
    database, then the table of blocks and their growth."""
    parser = arguments(doc)
    parser.add_argument("--sizes", default=sizes)
    parser.add_argument("--plans", action="store_true", help="print each plan to stderr")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with django_database(suffix, keep=args.keep):
        results = [measure(size, args.plans) for size in sizes]
        close_django_connections()  # before the scratch database is dropped
    head = "".join(f"{f'{s:,} {unit} blocks':>18}{'ms':>8}" for s in sizes)
    print(f"\n{title:<42}{head}{'growth':>9}")
    for name in results[0]:
        cells = "".join(f"{r[name][0]:>18,}{r[name][1]:>8.2f}" for r in results)
        growth = results[-1][name][0] / max(1, results[0][name][0])
        print(f"{name:<42}{cells}{growth:>8.2f}x")


if __name__ == "__main__":
    main()
