"""Named SQL for the runtime and agent transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed; callers announce only those rows.
"""

from common.sql import Prepared
from common.states import ACTIVE

MARK_STALE_OFFLINE = """
WITH stale_seen AS (
    SELECT id FROM agent_runtime
    WHERE status = 'online' AND last_seen_at < now() - %(stale_after)s
    ORDER BY last_seen_at
    LIMIT %(limit)s
    -- A runtime locked by an in-flight heartbeat is about to be fresh: leave it alone.
    FOR UPDATE SKIP LOCKED
), never_seen AS (
    -- Never heard from since it was made: judged by when that was.
    SELECT id FROM agent_runtime
    WHERE status = 'online' AND last_seen_at IS NULL AND created_at < now() - %(stale_after)s
    ORDER BY created_at
    LIMIT %(limit)s - (SELECT count(*) FROM stale_seen)
    FOR UPDATE SKIP LOCKED
), stale AS (
    SELECT id FROM stale_seen UNION ALL SELECT id FROM never_seen
)
-- The rows by primary key, from an array the planner cannot size (it assumes a few): joined
-- with `stale` instead, a chunk of 1,000 let it hash the whole runtime table for every chunk,
-- 21 ms a chunk at 100,000 runtimes and growing with every runtime ever registered.
UPDATE agent_runtime AS r
SET status = 'offline', offline_at = now(), offline_reason = 'stale'
WHERE r.id = ANY(ARRAY(SELECT id FROM stale))
  AND r.status = 'online' AND coalesce(r.last_seen_at, r.created_at) < now() - %(stale_after)s
RETURNING r.id, r.workspace_id
"""

# Offline runtimes that may still hold dispatched or running tasks: going offline, by any
# path, sets `work_pending` (a trigger, migration 0004), and the sweep clears it once their
# tasks are all failed, so an idle sweep reads one entry of a tiny partial index however many
# runtimes have ever died. Only those whose work is due are picked: deregistered ones at once,
# the others once offline longer than the reconnect grace, unless `judge_stale` is off (the
# platform was blind too recently, or the brake holds them). Walked in id order from a
# cursor. The lock keeps a heartbeat from bringing the runtime back mid-chunk; SKIP LOCKED
# steps around runtimes a heartbeat or another sweep holds right now.
OFFLINE_WITH_WORK_DUE = """
SELECT id FROM agent_runtime
WHERE status = 'offline' AND work_pending AND id > %(after)s
  AND (offline_reason = 'deregister'
       OR (%(judge_stale)s AND coalesce(offline_at, '-infinity') <= now() - %(grace)s))
ORDER BY id
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED
"""

# `work_pending` := whether the runtime still has live work, written only where it changes:
# a task skipped because its holder had it locked keeps the flag up for the next sweep.
SETTLE_WORK_PENDING = f"""
UPDATE agent_runtime AS r
SET work_pending = NOT r.work_pending
WHERE r.id IN (SELECT unnest(%(runtime_ids)s::uuid[])) AND r.status = 'offline'
  AND r.work_pending <> EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.runtime_id = r.id AND t.status IN {ACTIVE}
  )
"""

# --- Agents: every write to `agent` ----------------------------------------------------------

# Two statements, so that the UPDATE takes its snapshot after the locks are held: a concurrent
# sweep that failed this agent's other task has committed by then, and its failure is seen.
# Locking in id order keeps two sweeps from deadlocking on overlapping agents. Both statements
# take the ids through unnest(): with `id = ANY(<1,000 ids>)` the planner chose a sequential scan
# of the whole agent table (20 ms per chunk at 100,000 agents, growing with every agent ever
# made) over 1,000 primary-key probes (8 ms).
LOCK_WORKING_AGENTS = """
SELECT id FROM agent
WHERE id IN (SELECT unnest(%(agent_ids)s::uuid[])) AND status = 'working'
ORDER BY id
FOR UPDATE
"""

IDLE_AGENTS_WITHOUT_WORK = f"""
UPDATE agent AS a
SET status = 'idle'
WHERE a.id IN (SELECT unnest(%(agent_ids)s::uuid[]))
  AND a.status = 'working'
  AND NOT EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.agent_id = a.id AND t.status IN {ACTIVE}
  )
RETURNING a.id, a.workspace_id, a.status
"""

# Only an idle agent is put to work: blocked, error and offline belong to other parts of the
# platform, and the sweeps reconcile only `working` back to `idle`.
AGENT_STARTS_WORKING = """
UPDATE agent SET status = 'working'
WHERE id = %(agent_id)s AND status = 'idle'
RETURNING id, workspace_id, status
"""

# --- The daemon-facing API ------------------------------------------------------------------

# The token check, as the first part of a statement: `live`, the live token's row, and a touch
# of `last_used_at` at most once a minute, so that a heartbeat is not also a token write.
# Expiry is judged by the database's clock like everything else.
LIVE_TOKEN = """
WITH live AS (
    SELECT id, workspace_id, last_used_at FROM daemon_token
    WHERE token_hash = %(token_hash)s AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > now())
), touched AS (
    UPDATE daemon_token AS d SET last_used_at = now()
    FROM live
    WHERE d.id = live.id
      AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '60 seconds')
)"""

AUTHENTICATE_TOKEN = LIVE_TOKEN + "\nSELECT workspace_id FROM live\n"

# Upsert on the runtime's natural key. A new row needs every column that has only a Python
# default (`work_pending` has a database default).
# Registers of one workspace take turns from here to their commit, so that two cannot both
# take its last free slot. NO KEY UPDATE: inserting a runtime takes KEY SHARE on its workspace
# (the foreign key), which this does not block.
LOCK_WORKSPACE_FOR_REGISTER = """
SELECT id FROM workspace WHERE id = %(workspace_id)s FOR NO KEY UPDATE
"""

# Read after the lock, in a statement of its own, so that it sees what the register before it
# committed. The providers already registered for this daemon are upserted, not added. The
# unique (workspace_id, daemon_id, provider) index serves it: it reads this workspace's
# runtimes only, at most the quota of them.
COUNT_WORKSPACE_RUNTIMES = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE daemon_id = %(daemon_id)s AND provider = ANY(%(providers)s))
           AS registered
FROM agent_runtime WHERE workspace_id = %(workspace_id)s
"""

REGISTER_RUNTIME = """
INSERT INTO agent_runtime AS r (
    id, workspace_id, daemon_id, provider, name, device_name, version, status,
    last_seen_at, offline_at, metadata, created_at
)
VALUES (
    gen_random_uuid(), %(workspace_id)s, %(daemon_id)s, %(provider)s, %(name)s,
    %(device_name)s, %(version)s, 'online', now(), NULL, '{}'::jsonb, now()
)
ON CONFLICT (workspace_id, daemon_id, provider) DO UPDATE
SET name = EXCLUDED.name, device_name = EXCLUDED.device_name, version = EXCLUDED.version,
    status = 'online', last_seen_at = now(), offline_at = NULL, offline_reason = ''
RETURNING r.id, r.workspace_id, r.name, r.provider, r.status
"""


# The busiest call, so one statement does the whole request: the token check, then the update.
# The old state comes from a row lock taken first: if a sweep holds the runtime, the heartbeat
# waits for it and then reads the committed `offline`, so the comeback is announced, and a
# comeback within the reconnect grace of a runtime the sweeper marked offline is reported as
# the contradicted verdict it is. No row: the token is not live; a row without a runtime: the
# runtime is not in the token's workspace (or, `online_only`, not online).
# With `leases` (the ids of the tasks the daemon says it runs; NULL when it did not say), the
# runtime's live tasks are read from the partial index of live work, and written only where
# their lease changes: listed for the first time (`leased`), or no longer listed (since when:
# `unlisted_since`). A fleet whose lists do not change writes no task at all.
def _heartbeat(*, online_only: bool) -> str:
    only_online = " AND r.status = 'online'" if online_only else ""
    return (
        LIVE_TOKEN
        + f""", old AS (
    SELECT r.id, r.status, r.offline_reason, r.offline_at
    FROM agent_runtime AS r JOIN live USING (workspace_id)
    WHERE r.id = %(runtime_id)s{only_online}
    FOR UPDATE OF r
), beat AS (
    UPDATE agent_runtime AS r
    SET status = 'online', last_seen_at = now(), offline_at = NULL, offline_reason = ''
    FROM old
    WHERE r.id = old.id
    -- text, not the column's varchar(16): a prepared statement whose result type changes (a
    -- migration widening the column) fails on every call, in every session that prepared it.
    RETURNING r.id, old.status::text AS old_status,
              old.status = 'offline' AND old.offline_reason = 'stale'
                  AND old.offline_at > now() - %(grace)s::interval AS contradicted
), live_work AS (
    SELECT t.id, t.leased, t.unlisted_since, t.id = ANY(%(leases)s::uuid[]) AS listed
    FROM agent_task AS t JOIN old ON t.runtime_id = old.id
    WHERE %(leases)s::uuid[] IS NOT NULL AND t.status IN {ACTIVE}
), vouched AS (
    UPDATE agent_task AS t SET leased = true, unlisted_since = NULL
    FROM live_work AS w
    WHERE t.id = w.id AND w.listed AND (NOT w.leased OR w.unlisted_since IS NOT NULL)
      AND t.status IN {ACTIVE}
), unlisted AS (
    UPDATE agent_task AS t SET unlisted_since = now()
    FROM live_work AS w
    WHERE t.id = w.id AND NOT w.listed AND w.unlisted_since IS NULL AND t.status IN {ACTIVE}
)
SELECT live.workspace_id, beat.id AS runtime_id, beat.old_status, beat.contradicted
FROM live LEFT JOIN beat ON true
"""
    )


HEARTBEAT = Prepared("runtime_heartbeat", _heartbeat(online_only=False))
# A runtime online, as nearly every beat finds it: nothing to announce, so the statement runs
# alone in autocommit, one round trip. A row lock that finds the runtime gone offline (a sweep
# held it) skips the row, and the beat is done again by HEARTBEAT, in a transaction with its
# event.
HEARTBEAT_ONLINE = Prepared("runtime_heartbeat_online", _heartbeat(online_only=True))

# Locked in id order, so that two overlapping deregisters cannot deadlock; the caller compares
# the count with the ids it asked for and rolls back on any unknown one.
LOCK_WORKSPACE_RUNTIMES = """
SELECT id, workspace_id, status FROM agent_runtime
WHERE id = ANY(%(runtime_ids)s::uuid[]) AND workspace_id = %(workspace_id)s
ORDER BY id
FOR UPDATE
"""

# Their tasks fail on the next sweep, which `work_pending` (set by the trigger) points it to.
# A runtime already offline keeps its `offline_at`, but its daemon has now said it is leaving,
# so its tasks need not wait out the reconnect grace either.
DEREGISTER_RUNTIMES = """
UPDATE agent_runtime
SET status = 'offline', offline_reason = 'deregister',
    offline_at = CASE WHEN status = 'online' THEN now() ELSE offline_at END
WHERE id = ANY(%(runtime_ids)s::uuid[]) AND workspace_id = %(workspace_id)s
"""

# A claim holds the runtime FOR SHARE: the stale sweep skips locked runtimes, so a runtime
# cannot go offline between a claim's check and its commit.
LOCK_RUNTIME_FOR_CLAIM = """
SELECT status FROM agent_runtime
WHERE id = %(runtime_id)s AND workspace_id = %(workspace_id)s
FOR SHARE
"""

# --- Collection of long-offline runtimes ----------------------------------------------------

# The next candidates after the cursor (offline_at, id), oldest first.
GC_CANDIDATES = """
SELECT id, offline_at FROM agent_runtime
WHERE status = 'offline' AND offline_at < now() - %(gc_after)s
  AND (offline_at, id) > (%(after_at)s, %(after_id)s)
ORDER BY offline_at, id
LIMIT %(limit)s
"""

# Those still offline for long, with no agent bound and no queued or live task, locked; a
# heartbeat or claim holding one steps it out of this run.
LOCK_COLLECTABLE = """
SELECT r.id, r.workspace_id FROM agent_runtime AS r
WHERE r.id IN (SELECT unnest(%(runtime_ids)s::uuid[]))
  AND r.status = 'offline' AND r.offline_at < now() - %(gc_after)s
  AND NOT EXISTS (SELECT 1 FROM agent AS a WHERE a.runtime_id = r.id)
  AND NOT EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.runtime_id = r.id AND t.status IN ('queued', 'dispatched', 'running')
  )
ORDER BY r.id
FOR UPDATE SKIP LOCKED
"""

DELETE_RUNTIMES = """
DELETE FROM agent_runtime WHERE id IN (SELECT unnest(%(runtime_ids)s::uuid[]))
RETURNING id, workspace_id
"""


# --- What members do ---------------------------------------------------------------------

# Only an offline runtime, and once an outage: a second click changes nothing.
DISMISS = """
UPDATE agent_runtime AS r SET dismissed_at = now()
WHERE r.id = %(runtime_id)s AND r.workspace_id = %(workspace_id)s AND r.status = 'offline'
  AND (r.dismissed_at IS NULL OR r.offline_at > r.dismissed_at)
RETURNING r.id, r.workspace_id
"""

RUNTIME_STATUS = """
SELECT status FROM agent_runtime WHERE id = %(runtime_id)s AND workspace_id = %(workspace_id)s
"""
