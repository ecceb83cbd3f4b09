"""Named SQL for the task transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed, with the runtime's workspace so that each event can name it.
"""

# Tasks a daemon or another sweep holds are skipped, never waited on: the holder decides
# their fate, and a task that completes meanwhile must stay completed.
FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES = """
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
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, t.failure_reason,
          t.error
"""

FAIL_STUCK_TASKS = """
WITH stuck AS (
    SELECT id FROM agent_task
    WHERE (status = 'dispatched' AND dispatched_at < now() - %(dispatch_timeout)s)
       OR (status = 'running' AND started_at < now() - %(running_timeout)s)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE agent_task AS t
SET status = 'failed', error = %(error)s, failure_reason = 'timeout', completed_at = now()
FROM stuck, agent_runtime AS r
WHERE t.id = stuck.id AND r.id = t.runtime_id
  AND ((t.status = 'dispatched' AND t.dispatched_at < now() - %(dispatch_timeout)s)
    OR (t.status = 'running' AND t.started_at < now() - %(running_timeout)s))
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, t.failure_reason,
          t.error
"""
