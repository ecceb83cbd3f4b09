"""Named SQL for the runtime transitions the ORM cannot say (UPDATE ... RETURNING).

Every statement repeats its whole guard, takes `now()` from PostgreSQL and returns the rows it
changed; callers announce only those rows.
"""

import re
import weakref

from django.db import DatabaseError, connection
from psycopg2.errorcodes import DUPLICATE_PREPARED_STATEMENT, INVALID_SQL_STATEMENT_NAME

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

# Offline runtimes that may still hold dispatched or running tasks: going offline, by any
# path, sets `work_pending` (a trigger, migration 0004), and the sweep clears it once their
# tasks are all failed, so an idle sweep reads one entry of a tiny partial index however many
# runtimes have ever died. Walked in id order from a cursor. The lock keeps a heartbeat from
# bringing the runtime back mid-chunk; SKIP LOCKED steps around runtimes a heartbeat or
# another sweep holds right now.
OFFLINE_WITH_WORK_PENDING = """
SELECT id FROM agent_runtime
WHERE status = 'offline' AND work_pending AND id > %(after)s
ORDER BY id
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED
"""

# `work_pending` := whether the runtime still has live work, written only where it changes:
# a task skipped because its holder had it locked keeps the flag up for the next sweep.
SETTLE_WORK_PENDING = """
UPDATE agent_runtime AS r
SET work_pending = NOT r.work_pending
WHERE r.id IN (SELECT unnest(%(runtime_ids)s::uuid[])) AND r.status = 'offline'
  AND r.work_pending <> EXISTS (
      SELECT 1 FROM agent_task AS t
      WHERE t.runtime_id = r.id AND t.status IN ('dispatched', 'running')
  )
RETURNING r.id
"""

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

IDLE_AGENTS_WITHOUT_WORK = """
UPDATE agent AS a
SET status = 'idle'
WHERE a.id IN (SELECT unnest(%(agent_ids)s::uuid[]))
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


class Prepared:
    """A statement PostgreSQL plans once per connection instead of on every run. Planning the
    heartbeat cost more than running it: 0.56 ms of PostgreSQL's CPU a heartbeat, 0.22 ms
    prepared. A prepared statement lives in its database session, so this needs the session to
    be the app's own from one request to the next: a direct connection or a session-mode
    pooler, not transaction-mode pooling."""

    def __init__(self, name: str, sql: str):
        self.name, self.params = name, []
        self.sql = re.sub(r"%\((\w+)\)s", self._number, sql)
        # The driver connections it is prepared on; a reconnect is a new one, prepared anew.
        self.prepared_on = weakref.WeakSet()

    def _number(self, match: re.Match) -> str:
        if match[1] not in self.params:
            self.params.append(match[1])
        return f"${self.params.index(match[1]) + 1}"

    def fetch_all(self, **params) -> list[tuple]:
        args = [params[p] for p in self.params]
        execute = f"EXECUTE {self.name}" + (f" ({', '.join(['%s'] * len(args))})" if args else "")
        with connection.cursor() as cursor:
            if connection.connection not in self.prepared_on:
                self._prepare(cursor)
            try:
                cursor.execute(execute, args)
            except DatabaseError as exc:
                # Gone from the session (a DEALLOCATE, a pooler's reset): prepared again, once.
                if _sqlstate(exc) != INVALID_SQL_STATEMENT_NAME or not connection.get_autocommit():
                    raise
                self._prepare(cursor)
                cursor.execute(execute, args)
            return cursor.fetchall()

    def _prepare(self, cursor) -> None:
        try:
            cursor.execute(f"PREPARE {self.name} AS {self.sql}")
        except DatabaseError as exc:
            # A session kept by a pooler may hold one already, perhaps another release's.
            if _sqlstate(exc) != DUPLICATE_PREPARED_STATEMENT or not connection.get_autocommit():
                raise
            cursor.execute(f"DEALLOCATE {self.name}")
            cursor.execute(f"PREPARE {self.name} AS {self.sql}")
        self.prepared_on.add(connection.connection)


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "pgcode", None)


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
    status = 'online', last_seen_at = now(), offline_at = NULL
RETURNING r.id, r.workspace_id, r.name, r.provider, r.status
"""

# The busiest call, so one statement does the whole request: the token check, then the update.
# The old status comes from a row lock taken first: if a sweep holds the runtime, the heartbeat
# waits for it and then reads the committed `offline`, so the comeback is announced. No row:
# the token is not live, or the runtime is not in its workspace; the caller tells them apart.
HEARTBEAT = Prepared(
    "runtime_heartbeat",
    LIVE_TOKEN
    + """, old AS (
    SELECT r.id, r.status FROM agent_runtime AS r JOIN live USING (workspace_id)
    WHERE r.id = %(runtime_id)s
    FOR UPDATE OF r
)
UPDATE agent_runtime AS r
SET status = 'online', last_seen_at = now(), offline_at = NULL
FROM old
WHERE r.id = old.id
-- text, not the column's varchar(16): a prepared statement whose result type changes (a
-- migration widening the column) fails on every call, in every session that prepared it.
RETURNING r.id, r.workspace_id, old.status::text
""",
)

# Locked in id order, so that two overlapping deregisters cannot deadlock; the caller compares
# the count with the ids it asked for and rolls back on any unknown one.
LOCK_WORKSPACE_RUNTIMES = """
SELECT id FROM agent_runtime
WHERE id = ANY(%(runtime_ids)s::uuid[]) AND workspace_id = %(workspace_id)s
ORDER BY id
FOR UPDATE
"""

# Their tasks fail on the next sweep, which `work_pending` (set by the trigger) points it to.
DEREGISTER_RUNTIMES = """
UPDATE agent_runtime
SET status = 'offline', offline_at = now()
WHERE id = ANY(%(runtime_ids)s::uuid[]) AND workspace_id = %(workspace_id)s
  AND status = 'online'
RETURNING id, workspace_id
"""

# A claim holds the runtime FOR SHARE: the stale sweep skips locked runtimes, so a runtime
# cannot go offline between a claim's check and its commit.
LOCK_RUNTIME_FOR_CLAIM = """
SELECT status FROM agent_runtime
WHERE id = %(runtime_id)s AND workspace_id = %(workspace_id)s
FOR SHARE
"""
