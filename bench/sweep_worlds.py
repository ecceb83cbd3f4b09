"""The worlds bench/sweep.py measures, as bulk SQL: who is online, who long dead, which tasks
are live and which history, and which runtimes the mass outage kills.

- dense: every live runtime holds a dispatched and a running task beside a queued one; 5% of
  the runtimes died days ago; the outage kills 10% of them.
- sparse: the same fleet, but live work only on the runtimes the outage kills, one task
  each: the world where a statement driven from all offline runtimes shows its cost.
- graveyard: every runtime but one died long ago; the one left dies now.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import World


@dataclass(frozen=True)
class Spec:
    world: World
    tasks: str  # a query of TASKS' shape (bench.common), with %(lo)s, %(hi)s and %(r)s
    doomed: str  # the runtimes the outage kills, as an SQL predicate


def fleet(runtimes: int, dead: str) -> World:
    """Runtime k has one agent, and 99 neighbours in its workspace. Those matching `dead` died
    days ago (offline, only history), k % 100 = 50 was never seen."""
    return World(
        workspace=f"mod(k, {max(1, runtimes // 100)})",
        status=f"CASE WHEN {dead} THEN 'offline' ELSE 'online' END",
        last_seen_at=f"CASE WHEN {dead} THEN now() - interval '2 days' WHEN mod(k, 100) = 50"
        " THEN NULL ELSE now() - mod(k, 600) * interval '1 second' END",
        offline_at=f"CASE WHEN {dead} THEN now() - interval '2 days' END",
    )


# Task i runs on runtime k = i % R in state bucket b = (i / R + k) % 10: at full size each live
# runtime has a dispatched (b = 0), a running (1) and a queued task (2); the rest is history.
DENSE_TASKS = """
SELECT k, st AS status, at AS created_at, CASE WHEN st <> 'queued' THEN at END AS dispatched_at,
       CASE WHEN st NOT IN ('queued', 'dispatched') THEN at END AS started_at,
       CASE WHEN done THEN at + interval '5 minutes' END AS completed_at,
       CASE WHEN st = 'failed' THEN 'agent crashed' ELSE '' END AS error,
       CASE WHEN st = 'failed' THEN 'agent_error' ELSE '' END AS failure_reason
FROM (SELECT i, i %% %(r)s AS k, (i / %(r)s + i %% %(r)s) %% 10 AS b
      FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS s,
LATERAL (SELECT k %% 20 = 19 OR b > 2 AS done) AS d,
LATERAL (SELECT CASE WHEN done THEN now() - (i %% 2592000 + 3600) * interval '1 second'
                     ELSE now() - (i %% 600) * interval '1 second' END AS at,
                CASE WHEN done THEN (CASE WHEN b = 9 THEN 'failed' ELSE 'completed' END)
                     ELSE (ARRAY['dispatched', 'running', 'queued'])[b + 1] END AS st) AS t
"""

# History on every runtime; a running task only as the first task of each runtime that
# `live` matches.
HISTORY_TASKS = """
SELECT k, st AS status, at AS created_at, at AS dispatched_at, at AS started_at,
       CASE WHEN st <> 'running' THEN at + interval '5 minutes' END AS completed_at,
       CASE WHEN st = 'failed' THEN 'agent crashed' ELSE '' END AS error,
       CASE WHEN st = 'failed' THEN 'agent_error' ELSE '' END AS failure_reason
FROM (SELECT i, i %% %(r)s AS k FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS s,
LATERAL (SELECT CASE WHEN i < %(r)s AND ({live}) THEN 'running'
                     WHEN i %% 10 = 9 THEN 'failed' ELSE 'completed' END AS st) AS t,
LATERAL (SELECT CASE WHEN st = 'running' THEN now() - (i %% 600) * interval '1 second'
                     ELSE now() - (i %% 2592000 + 3600) * interval '1 second' END AS at) AS a
"""


def worlds(runtimes: int) -> dict[str, Spec]:
    return {
        "dense": Spec(fleet(runtimes, "mod(k, 20) = 19"), DENSE_TASKS, "daemon_id ~ '7$'"),
        "sparse": Spec(
            fleet(runtimes, "mod(k, 20) = 19"),
            HISTORY_TASKS.format(live="k %% 10 = 7"),
            "daemon_id ~ '7$'",
        ),
        "graveyard": Spec(
            fleet(runtimes, "k > 0"), HISTORY_TASKS.format(live="k = 0"), "daemon_id = 'daemon-0'"
        ),
    }


WORKING = """
UPDATE agent SET status = 'working' WHERE status = 'idle'
  AND id IN (SELECT agent_id FROM agent_task WHERE status IN ('dispatched', 'running'))
"""

# Ages the doomed runtimes, and notes every row a variant may change so RESET can put it back.
OUTAGE = """
UPDATE agent_runtime SET last_seen_at = now() - interval '2 hours'
WHERE status = 'online' AND {doomed};
CREATE TABLE bench_runtimes AS SELECT id FROM agent_runtime
WHERE status = 'online' AND last_seen_at < now() - %(stale)s;
CREATE TABLE bench_tasks AS SELECT t.id, t.status, t.agent_id FROM agent_task AS t
JOIN bench_runtimes AS r ON r.id = t.runtime_id WHERE t.status IN ('dispatched', 'running');
"""

RESET = """
UPDATE agent_runtime AS r SET status = 'online', offline_at = NULL, work_pending = false
FROM bench_runtimes AS b WHERE r.id = b.id;
UPDATE agent_task AS t SET status = b.status, completed_at = NULL, error = '', failure_reason = ''
FROM bench_tasks AS b WHERE t.id = b.id;
UPDATE agent SET status = 'working' WHERE id IN (SELECT agent_id FROM bench_tasks);
"""

CLEAN_UP = "DROP TABLE bench_runtimes, bench_tasks"

# The raw baseline: the whole outage in one statement, no chunks, no locks beyond the UPDATEs,
# returning the same columns the real sweep needs for its announcements.
RAW_SWEEP = """
WITH gone AS (
    UPDATE agent_runtime SET status = 'offline', offline_at = now()
    WHERE status = 'online' AND last_seen_at < now() - %(stale)s RETURNING id, workspace_id
), failed AS (
    UPDATE agent_task AS t SET status = 'failed', error = 'runtime went offline',
        failure_reason = 'runtime_offline', completed_at = now()
    FROM agent_runtime AS r WHERE r.id = t.runtime_id AND t.status IN ('dispatched', 'running')
      AND (r.status = 'offline' OR r.id IN (SELECT id FROM gone))
    RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, failure_reason, error
), idled AS (
    UPDATE agent AS a SET status = 'idle'
    WHERE a.status = 'working' AND a.id IN (SELECT agent_id FROM failed) AND NOT EXISTS (
        SELECT 1 FROM agent_task AS x WHERE x.agent_id = a.id
        AND x.status IN ('dispatched', 'running') AND x.id NOT IN (SELECT id FROM failed))
    RETURNING a.id, a.workspace_id, a.status
)
SELECT 'runtimes' AS kind, id, workspace_id, NULL::uuid AS agent_id, NULL::uuid AS issue_id,
       NULL::uuid AS runtime_id, NULL AS failure_reason, NULL AS error FROM gone
UNION ALL
SELECT 'tasks', id, workspace_id, agent_id, issue_id, runtime_id, failure_reason, error FROM failed
UNION ALL SELECT 'agents', id, workspace_id, NULL, NULL, NULL, status, NULL FROM idled
"""
