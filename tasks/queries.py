"""Named SQL for the task transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed, with the runtime's workspace so that each event can name it.
"""

from common.states import ACTIVE

# The task states a sweeper's verdict leaves: a daemon's later report on such a task
# contradicts the verdict.
SWEEPER_FAILURES = "('runtime_offline', 'timeout', 'orphaned')"

# Whether a task the sweeper fails has another attempt in its budget (its own max_attempts,
# or the default): returned by the failing statements, so that a chunk whose failures have
# none left runs no retry statement; RETRY_FAILED repeats it as its guard.
BUDGET_LEFT = "t.attempt < coalesce(t.max_attempts, %(max_attempts)s)"

# Tasks a daemon or another sweep holds are skipped, never waited on: the holder decides
# their fate, and a task that completes meanwhile must stay completed. The caller's transaction
# holds the runtimes (it just marked them offline, or locked them), so their status is stable.
# Only runtimes whose work is due (see runtimes.queries.OFFLINE_WITH_WORK_DUE) lose their
# tasks, and the error says why, with the evidence.
# Every step is driven from the given ids, whatever the planner's statistics say: the runtime by
# a LATERAL lookup of its primary key (the LIMIT keeps the planner from flattening it into a
# join), the tasks by a LATERAL lookup in the partial index of live work (its row lock keeps it
# apart too). A plain join of the ids with `agent_runtime` let the planner hash every offline
# runtime ever (agent_runtime_offline_idx) for each chunk: a cost growing with offline history,
# 190 ms for the first chunk of a mass outage and 1,340 ms for the tenth.
FAIL_ACTIVE_TASKS_OF_OFFLINE_RUNTIMES = f"""
WITH picked AS MATERIALIZED (
    SELECT r.id, r.workspace_id, r.error
    FROM unnest(%(runtime_ids)s::uuid[]) AS p(id) CROSS JOIN LATERAL (
        SELECT r.id, r.workspace_id, CASE
            WHEN r.offline_reason = 'deregister' THEN 'runtime deregistered by its daemon'
            ELSE format(
                'runtime went offline: no heartbeat for %%s s (stale %%s s + grace %%s s)',
                round(extract(epoch FROM now() - coalesce(r.last_seen_at, r.created_at))),
                round(extract(epoch FROM %(stale_after)s::interval)),
                round(extract(epoch FROM %(grace)s::interval)))
        END AS error
        FROM agent_runtime AS r
        WHERE r.id = p.id AND r.status = 'offline'
          AND (r.offline_reason = 'deregister'
               OR (%(judge_stale)s AND coalesce(r.offline_at, '-infinity') <= now() - %(grace)s))
        LIMIT 1
    ) AS r
), doomed AS (
    SELECT t.id, picked.workspace_id, picked.error
    FROM picked CROSS JOIN LATERAL (
        SELECT id FROM agent_task
        WHERE runtime_id = picked.id AND status IN {ACTIVE}
        FOR UPDATE SKIP LOCKED
    ) AS t
)
UPDATE agent_task AS t
SET status = 'failed', error = doomed.error, failure_reason = 'runtime_offline',
    completed_at = now()
FROM doomed
WHERE t.id = doomed.id AND t.status IN {ACTIVE}
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, doomed.workspace_id, t.failure_reason,
          t.error, {BUDGET_LEFT} AS retry_due
"""

# One pick per rule, each ordered by its own partial index: finished tasks keep old
# dispatched_at/started_at values, so the planner expects thousands of matches, and a single
# OR-ed pick under LIMIT became a sequential scan of the whole table (114 ms idle at 1M
# tasks, against 0.5 ms this way). All picks together stay within one chunk.
# - dispatched past the dispatch timeout;
# - running past the running timeout, unless its daemon vouches for it (`leased`: its
#   heartbeats list it); then only past the maximum running time;
# - live, but no longer listed by its daemon's heartbeats for the orphan grace (`orphaned`),
#   while its runtime is online: an offline runtime's daemon sends no list, and its tasks are
#   for the reconnect grace and the mass-outage brake to judge.
FAIL_STUCK_TASKS = f"""
WITH stuck_dispatched AS (
    SELECT id FROM agent_task
    WHERE %(judge_dispatched)s
      AND status = 'dispatched' AND dispatched_at < now() - %(dispatch_timeout)s
    ORDER BY dispatched_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), stuck_running AS (
    SELECT id FROM agent_task
    WHERE %(judge_running)s
      AND status = 'running' AND NOT leased AND started_at < now() - %(running_timeout)s
    ORDER BY started_at
    LIMIT %(limit)s - (SELECT count(*) FROM stuck_dispatched)
    FOR UPDATE SKIP LOCKED
), stuck_leased AS (
    SELECT id FROM agent_task
    WHERE %(judge_running)s
      AND status = 'running' AND leased AND started_at < now() - %(max_running)s
    ORDER BY started_at
    LIMIT %(limit)s - (SELECT count(*) FROM stuck_dispatched)
                    - (SELECT count(*) FROM stuck_running)
    FOR UPDATE SKIP LOCKED
), timed_out AS (
    SELECT id FROM stuck_dispatched UNION SELECT id FROM stuck_running
    UNION SELECT id FROM stuck_leased
), orphaned AS (
    SELECT id FROM agent_task
    WHERE status IN {ACTIVE} AND unlisted_since < now() - %(orphan_grace)s
      AND dispatched_at < now() - %(orphan_grace)s
      AND id NOT IN (SELECT id FROM timed_out)
      AND EXISTS (SELECT 1 FROM agent_runtime AS r
                  WHERE r.id = agent_task.runtime_id AND r.status = 'online')
    ORDER BY unlisted_since
    LIMIT %(limit)s - (SELECT count(*) FROM timed_out)
    FOR UPDATE SKIP LOCKED
), stuck AS (
    SELECT id, 'timeout' AS reason, 'task timed out' AS error FROM timed_out
    UNION ALL SELECT id, 'orphaned', 'the daemon no longer runs it' FROM orphaned
)
UPDATE agent_task AS t
SET status = 'failed', error = stuck.error, failure_reason = stuck.reason, completed_at = now()
FROM stuck
WHERE t.id = stuck.id
  AND CASE stuck.reason
      WHEN 'timeout' THEN
          (t.status = 'dispatched' AND t.dispatched_at < now() - %(dispatch_timeout)s)
          OR (t.status = 'running' AND t.started_at < now() - CASE
              WHEN t.leased THEN %(max_running)s ELSE %(running_timeout)s END)
      ELSE t.status IN {ACTIVE} AND t.unlisted_since < now() - %(orphan_grace)s
          AND EXISTS (SELECT 1 FROM agent_runtime AS r
                      WHERE r.id = t.runtime_id AND r.status = 'online')
  END
-- The workspace by a primary-key probe per failed task: joined instead, a chunk of 1,000 let
-- the planner hash the whole runtime table, which grows with every runtime ever registered.
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id,
          (SELECT r.workspace_id FROM agent_runtime AS r WHERE r.id = t.runtime_id)
              AS workspace_id,
          t.failure_reason, t.error, {BUDGET_LEFT} AS retry_due
"""

# Queued and never claimed for the TTL: no daemon took it, and none will.
EXPIRE_QUEUED_TASKS = """
WITH expired AS (
    SELECT id FROM agent_task
    WHERE status = 'queued' AND created_at < now() - %(queued_ttl)s
    ORDER BY created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE agent_task AS t
SET status = 'failed', failure_reason = 'queued_expired', completed_at = now(),
    error = format('queued for %%s s and never claimed (ttl %%s s)',
                   round(extract(epoch FROM now() - t.created_at)),
                   round(extract(epoch FROM %(queued_ttl)s::interval)))
FROM expired
WHERE t.id = expired.id AND t.status = 'queued' AND t.created_at < now() - %(queued_ttl)s
-- By its agent: a queued task may outlive its runtime.
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id,
          (SELECT a.workspace_id FROM agent AS a WHERE a.id = t.agent_id) AS workspace_id,
          t.failure_reason, t.error
"""

# The next attempt of a failed task: queued on the same agent and runtime. One retry a failure
# (retry_of is unique), however many sweeps or clicks, so `{eligible}` says only who may.
QUEUE_NEXT_ATTEMPT = """
INSERT INTO agent_task (id, agent_id, runtime_id, workspace_id, issue_id, status, priority,
                        created_at, error, failure_reason, attempt, max_attempts, retry_of_id,
                        leased)
SELECT gen_random_uuid(), t.agent_id, t.runtime_id, t.workspace_id, t.issue_id, 'queued',
       t.priority, now(), '', '', t.attempt + 1, t.max_attempts, t.id, false
FROM agent_task AS t
WHERE t.status = 'failed' AND t.runtime_id IS NOT NULL AND {eligible}
ON CONFLICT (retry_of_id) DO NOTHING
RETURNING id, agent_id, issue_id, runtime_id, workspace_id, retry_of_id, attempt
"""

# What the sweeper failed, while its budget lasts.
RETRY_FAILED = QUEUE_NEXT_ATTEMPT.format(
    eligible=f"""t.id = ANY(%(task_ids)s::uuid[]) AND t.failure_reason IN {SWEEPER_FAILURES}
  AND {BUDGET_LEFT}"""
)

# A member's Retry: any failure of the workspace, whatever the budget (a person decided).
RETRY_BY_MEMBER = QUEUE_NEXT_ATTEMPT.format(
    eligible="t.id = %(task_id)s AND t.workspace_id = %(workspace_id)s"
)

RETRY_STATE = """
SELECT t.status, t.runtime_id, (SELECT n.id FROM agent_task AS n WHERE n.retry_of_id = t.id)
       AS retry_id
FROM agent_task AS t WHERE t.id = %(task_id)s AND t.workspace_id = %(workspace_id)s
"""


# Before a runtime is collected: its tasks' history keeps everything but the runtime.
DETACH_RUNTIME_HISTORY = """
UPDATE agent_task SET runtime_id = NULL WHERE runtime_id = ANY(%(runtime_ids)s::uuid[])
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
RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, t.failure_reason,
          t.error
"""

# The first report a daemon sends on a task the sweeper already failed is kept on it.
RECORD_CONTRADICTION = f"""
UPDATE agent_task AS t
SET contradicted_at = now(), contradicting_report = %(report)s::jsonb
FROM agent_runtime AS r
WHERE t.id = %(task_id)s AND r.id = t.runtime_id AND r.workspace_id = %(workspace_id)s
  AND t.status = 'failed' AND t.failure_reason IN {SWEEPER_FAILURES}
  AND t.contradicted_at IS NULL
RETURNING t.id
"""

# From the partial index of contradicted tasks: as many entries as contradictions.
CONTRADICTED_COUNT = "SELECT count(*) AS n FROM agent_task WHERE contradicted_at IS NOT NULL"

TASK_STATUS = """
SELECT t.status FROM agent_task AS t
JOIN agent_runtime AS r ON r.id = t.runtime_id
WHERE t.id = %(task_id)s AND r.workspace_id = %(workspace_id)s
"""
