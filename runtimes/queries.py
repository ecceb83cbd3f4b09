"""Named SQL for the runtime transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed; callers announce only those rows.
"""

from django.db import connection

MARK_STALE_OFFLINE = """
WITH stale AS (
    SELECT id FROM agent_runtime
    WHERE status = 'online' AND last_seen_at < now() - %(stale_after)s
    ORDER BY last_seen_at
    LIMIT %(limit)s
    -- A runtime locked by an in-flight heartbeat is about to be fresh: leave it alone.
    FOR UPDATE SKIP LOCKED
)
UPDATE agent_runtime AS r
SET status = 'offline', offline_at = now()
FROM stale
WHERE r.id = stale.id
  AND r.status = 'online' AND r.last_seen_at < now() - %(stale_after)s
RETURNING r.id, r.workspace_id
"""

# Offline runtimes that still have active tasks. FOR SHARE keeps a heartbeat from bringing the
# runtime back between this pick and the failing of its tasks; SKIP LOCKED steps around
# runtimes a heartbeat or another sweep holds right now.
OFFLINE_WITH_ACTIVE_TASKS = """
SELECT r.id FROM agent_runtime AS r
WHERE r.status = 'offline'
  AND EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.runtime_id = r.id AND t.status IN ('dispatched', 'running')
  )
LIMIT %(limit)s
FOR SHARE OF r SKIP LOCKED
"""

# Two statements, so that the UPDATE takes its snapshot after the locks are held: a concurrent
# sweep that failed this agent's other task has committed by then, and its failure is seen.
# Locking in id order keeps two sweeps from deadlocking on overlapping agents.
LOCK_WORKING_AGENTS = """
SELECT id FROM agent
WHERE id = ANY(%(agent_ids)s::uuid[]) AND status = 'working'
ORDER BY id
FOR UPDATE
"""

IDLE_AGENTS_WITHOUT_WORK = """
UPDATE agent AS a
SET status = 'idle'
WHERE a.id = ANY(%(agent_ids)s::uuid[])
  AND a.status = 'working'
  AND NOT EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.agent_id = a.id AND t.status IN ('dispatched', 'running')
  )
RETURNING a.id, a.workspace_id, a.status
"""


def fetch_all(sql: str, **params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
