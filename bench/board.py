"""The read API's statements (runtimes/selectors.py, tasks/selectors.py) EXPLAINed at two sizes:
the blocks each page reads, for one workspace of ten. A page that reads more at the larger size
costs what the history costs, not what the page shows.

    DATABASE_URL=... python -m bench.board [--sizes 10000,100000] [--plans] [--keep]

Works only in its own database, `<name>_bench_board`, which it creates, fills and drops. Each
size has ten workspaces and ten tasks a runtime (100,000 runtimes: 1,000,000 tasks), of which
2% are live and 5% failed. The baselines are what the API would run without the workspace
column on tasks (a join through the agents) and with OFFSET paging instead of the cursor.
"""

from __future__ import annotations

import sys
from uuid import UUID

from bench.common import VACUUM, World, fill, fill_tasks
from bench.explain import blocks, explain_at_sizes
from common.sql import fetch, fetch_one
from runtimes.selectors import RUNTIMES_PAGE
from tasks import selectors

WORKSPACES = 10
TASKS_PER_RUNTIME = 10
WORLD = World(workspace=f"mod(k, {WORKSPACES})")

# Task i of runtime k = i mod r: one second older than task i - 1; 2% running, 5% failed (the
# reasons in turn), the rest completed. Failures end a minute after they start.
TASKS = """
SELECT k, st AS status, now() - i * interval '1 second' AS created_at,
       now() - i * interval '1 second' AS dispatched_at,
       now() - i * interval '1 second' AS started_at,
       CASE WHEN st <> 'running' THEN now() - (i - 60) * interval '1 second' END AS completed_at,
       CASE WHEN st = 'failed' THEN 'boom' ELSE '' END AS error,
       CASE WHEN st = 'failed' THEN (ARRAY['runtime_offline', 'timeout', 'agent_error',
            'orphaned', 'queued_expired'])[1 + mod(i / 100, 5)] ELSE '' END AS failure_reason
FROM (SELECT i, mod(i, %(r)s) AS k FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS s,
-- Hashed, so that the states are spread over the workspaces (k, and so the workspace, is a
-- function of i too).
LATERAL (SELECT mod(abs(hashint4(i)), 100) AS h) AS d,
LATERAL (SELECT CASE WHEN h < 2 THEN 'running' WHEN h < 7 THEN 'failed'
                     ELSE 'completed' END AS st) AS t
"""

# The row half-way down the workspace's tasks, and its runtimes: where a deep page starts.
MIDDLE_TASK = """
SELECT created_at, id FROM agent_task WHERE workspace_id = %(workspace_id)s
ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1
"""
MIDDLE_RUNTIME = """
SELECT daemon_id, provider FROM agent_runtime WHERE workspace_id = %(workspace_id)s
ORDER BY daemon_id, provider OFFSET %(offset)s LIMIT 1
"""


def tasks_sql(statuses: tuple[str, ...] = (), reason: str = "") -> str:
    return selectors.tasks_page_sql(statuses=statuses, failure_reason=reason)


def joined(sql: str) -> str:
    """The tasks page without `agent_task.workspace_id`: the workspace through the agent."""
    where = "FROM agent_task AS t\n    WHERE t.workspace_id = %(workspace_id)s"
    assert where in sql
    return sql.replace(where, "FROM agent_task AS t JOIN agent AS w ON w.id = t.agent_id\n"
                              "    WHERE w.workspace_id = %(workspace_id)s")  # fmt: skip


def by_offset(sql: str) -> str:
    assert "LIMIT %(limit)s\n" in sql
    return sql.replace("LIMIT %(limit)s\n", "LIMIT %(limit)s OFFSET %(offset)s\n")


def statements(workspace: UUID, size: int) -> dict[str, tuple[str, dict]]:
    half = size // WORKSPACES * TASKS_PER_RUNTIME // 2
    middle = fetch_one(MIDDLE_TASK, workspace_id=workspace, offset=half)
    deep_runtime = fetch_one(MIDDLE_RUNTIME, workspace_id=workspace, offset=size // 20)
    first = {"workspace_id": workspace, "after_at": None, "after_id": None, "limit": 50}
    deep = {**first, "after_at": middle.created_at, "after_id": middle.id}
    runtimes = {"workspace_id": workspace, "after_daemon": None, "after_provider": None}
    deep_runtimes = {"after_daemon": deep_runtime.daemon_id, "limit": 200,
                     "after_provider": deep_runtime.provider}  # fmt: skip
    return {
        "runtimes, first page (200)": (RUNTIMES_PAGE, {**runtimes, "limit": 200}),
        "runtimes, a page half-way (200)": (RUNTIMES_PAGE, {**runtimes, **deep_runtimes}),
        "tasks, first page (50)": (tasks_sql(), first),
        "tasks, a page half-way (cursor)": (tasks_sql(), deep),
        "  baseline: half-way by OFFSET": (by_offset(tasks_sql()), {**first, "offset": half}),
        "  baseline: first page, joined": (joined(tasks_sql()), first),
        "tasks ?status=failed (50)": (tasks_sql(("failed",)), first),
        "tasks ?failure_reason=timeout (50)": (tasks_sql(reason="timeout"), first),
        "tasks ?status=dispatched,running (200)": (
            tasks_sql(("dispatched", "running")),
            {**first, "limit": 200},
        ),
    }


def measure(size: int, show: bool) -> dict[str, tuple[int, float]]:
    fetch("TRUNCATE workspace, agent_runtime, agent, agent_task CASCADE")
    print(f"filling {size:,} runtimes, {TASKS_PER_RUNTIME * size:,} tasks ...", file=sys.stderr)
    fill(WORLD, 0, size)
    fill_tasks(TASKS, lo=0, hi=TASKS_PER_RUNTIME * size, r=size)
    fetch(VACUUM)
    workspace = fetch_one("SELECT md5('ws' || 0)::uuid AS id").id
    out = {}
    for name, (sql, params) in statements(workspace, size).items():
        blocks(sql, params, False)  # warm: the figures compare reads, not the disk
        out[name] = blocks(sql, params, show)
    return out


def main() -> None:
    explain_at_sizes(
        __doc__, "_bench_board", "10000,100000", measure,
        title=f"statement (workspace 1 of {WORKSPACES})", unit="rt",
    )  # fmt: skip


if __name__ == "__main__":
    main()
