"""Named SQL for the task transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed, with the runtime's workspace so that each event can name it.
"""

from common.states import ACTIVE

# The columns of a `tasks.changes.FailedTask`, for each statement that fails tasks.
FAILED_TASK = (
    "t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, t.failure_reason, t.error"
)

# Tasks a daemon or another sweep holds are skipped, never waited on: the holder decides
# their fate, and a task that completes meanwhile must stay completed.
FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES = f"""
WITH doomed AS (
    SELECT t.id FROM agent_task AS t
    JOIN agent_runtime AS r ON r.id = t.runtime_id
    WHERE t.runtime_id = ANY(%(runtime_ids)s::uuid[])
      AND t.status IN {ACTIVE} AND r.status = 'offline'
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE agent_task AS t
SET status = 'failed', error = %(error)s, failure_reason = 'runtime_offline',
    completed_at = now()
FROM doomed, agent_runtime AS r
WHERE t.id = doomed.id AND r.id = t.runtime_id
  AND t.status IN {ACTIVE} AND r.status = 'offline'
RETURNING {FAILED_TASK}
"""

# One pick per state, each ordered by its own partial index: finished tasks keep old
# dispatched_at/started_at values, so the planner expects thousands of matches, and a single
# OR-ed pick under LIMIT became a sequential scan of the whole table (114 ms idle at 1M
# tasks, against 0.5 ms this way). Both picks together stay within one chunk.
FAIL_STUCK_TASKS = f"""
WITH stuck_dispatched AS (
    SELECT id FROM agent_task
    WHERE status = 'dispatched' AND dispatched_at < now() - %(dispatch_timeout)s
    ORDER BY dispatched_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), stuck_running AS (
    SELECT id FROM agent_task
    WHERE status = 'running' AND started_at < now() - %(running_timeout)s
    ORDER BY started_at
    LIMIT %(limit)s - (SELECT count(*) FROM stuck_dispatched)
    FOR UPDATE SKIP LOCKED
), stuck AS (
    SELECT id FROM stuck_dispatched UNION ALL SELECT id FROM stuck_running
)
UPDATE agent_task AS t
SET status = 'failed', error = %(error)s, failure_reason = 'timeout', completed_at = now()
FROM stuck, agent_runtime AS r
WHERE t.id = stuck.id AND r.id = t.runtime_id
  AND ((t.status = 'dispatched' AND t.dispatched_at < now() - %(dispatch_timeout)s)
    OR (t.status = 'running' AND t.started_at < now() - %(running_timeout)s))
RETURNING {FAILED_TASK}
"""


# --- The daemon-facing API ------------------------------------------------------------------

# Claims serialise on the agents they could serve. Locking every agent with queued work on the
# runtime, in id order, before counting active tasks means that a concurrent claim for the same
# agent waits here, and the next statement's fresh snapshot counts its dispatched task.
LOCK_AGENTS_WITH_QUEUED_WORK = """
SELECT a.id FROM agent AS a
WHERE a.id IN (
    SELECT t.agent_id FROM agent_task AS t
    WHERE t.runtime_id = %(runtime_id)s AND t.status = 'queued'
)
ORDER BY a.id
FOR UPDATE OF a
"""

CLAIM_NEXT_TASK = f"""
WITH next AS (
    SELECT t.id FROM agent_task AS t
    JOIN agent AS a ON a.id = t.agent_id
    WHERE t.runtime_id = %(runtime_id)s AND t.status = 'queued'
      -- Only agents this claim holds: a task queued since for another agent waits its turn.
      AND t.agent_id = ANY(%(agent_ids)s::uuid[])
      AND (
          SELECT count(*) FROM agent_task AS busy
          WHERE busy.agent_id = t.agent_id AND busy.status IN {ACTIVE}
      ) < a.max_concurrent_tasks
    ORDER BY t.priority DESC, t.created_at, t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE agent_task AS t
SET status = 'dispatched', dispatched_at = now()
FROM next
WHERE t.id = next.id AND t.status = 'queued'
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, t.priority, t.status
"""

# The task transitions a daemon makes. Each is scoped to the token's workspace through the
# runtime, so that a task of another workspace is indistinguishable from no task at all.
START_TASK = """
UPDATE agent_task AS t
SET status = 'running', started_at = now()
FROM agent_runtime AS r
WHERE t.id = %(task_id)s AND r.id = t.runtime_id AND r.workspace_id = %(workspace_id)s
  AND t.status = 'dispatched'
RETURNING t.id, t.agent_id, t.status
"""

COMPLETE_TASK = """
UPDATE agent_task AS t
SET status = 'completed', completed_at = now(), result = %(result)s::jsonb
FROM agent_runtime AS r
WHERE t.id = %(task_id)s AND r.id = t.runtime_id AND r.workspace_id = %(workspace_id)s
  AND t.status = 'running'
RETURNING t.id, t.agent_id, t.status
"""

FAIL_TASK = f"""
UPDATE agent_task AS t
SET status = 'failed', error = %(error)s, failure_reason = 'agent_error', completed_at = now()
FROM agent_runtime AS r
WHERE t.id = %(task_id)s AND r.id = t.runtime_id AND r.workspace_id = %(workspace_id)s
  AND t.status IN {ACTIVE}
RETURNING {FAILED_TASK}
"""

TASK_STATUS = """
SELECT t.status FROM agent_task AS t
JOIN agent_runtime AS r ON r.id = t.runtime_id
WHERE t.id = %(task_id)s AND r.workspace_id = %(workspace_id)s
"""
