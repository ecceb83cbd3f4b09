"""The outbox's named SQL (executed by common.sql)."""

from outbox.wire import WIRE_COLUMNS

# One statement a batch of events, however many rows: arrays unnested, not a VALUES list built
# in Python.
RECORD = """
INSERT INTO outbox_event (workspace_id, type, actor_type, payload)
SELECT * FROM unnest(
    %(workspace_ids)s::uuid[], %(types)s::text[], %(actor_types)s::text[], %(payloads)s::jsonb[]
)
"""

HEAD_SEQ = "SELECT seq FROM outbox_head WHERE workspace_id = %(workspace_id)s"

OLDEST_SEQ = """
SELECT min(seq) AS seq FROM outbox_event
WHERE workspace_id = %(workspace_id)s AND seq IS NOT NULL
"""

EVENTS_AFTER = f"""
SELECT {WIRE_COLUMNS} FROM outbox_event
WHERE workspace_id = %(workspace_id)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s
"""

# The relay's serialization: a transaction-level advisory lock (first key: the product's lock
# space, as sweeper.locks), freed by the commit or by the death of the session.
TRY_RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(%(space)s, %(key)s) AS acquired"

# Numbers up to `limit` new rows, in id order, each workspace's continuing from its head. Rows
# are visible here only once their transactions committed, so a row whose transaction commits
# later is numbered later: nothing is skipped, and `seq` follows commit order.
NUMBER_NEW = """
WITH batch AS (
    SELECT id, workspace_id FROM outbox_event WHERE seq IS NULL ORDER BY id LIMIT %(limit)s
), numbered AS (
    SELECT id, workspace_id, row_number() OVER (PARTITION BY workspace_id ORDER BY id) AS n
    FROM batch
), counts AS (
    SELECT workspace_id, count(*) AS n FROM batch GROUP BY workspace_id
), heads AS (
    INSERT INTO outbox_head (workspace_id, seq)
    SELECT workspace_id, n FROM counts
    ON CONFLICT (workspace_id) DO UPDATE SET seq = outbox_head.seq + excluded.seq
    RETURNING workspace_id, seq
)
UPDATE outbox_event AS e
SET seq = heads.seq - counts.n + numbered.n
FROM numbered
JOIN counts USING (workspace_id)
JOIN heads USING (workspace_id)
WHERE e.id = numbered.id
"""

UNPUBLISHED = f"""
SELECT id, {WIRE_COLUMNS} FROM outbox_event
WHERE published_at IS NULL AND seq IS NOT NULL
ORDER BY workspace_id, seq
LIMIT %(limit)s
"""

MARK_PUBLISHED = "UPDATE outbox_event SET published_at = now() WHERE id = ANY(%(ids)s)"

# For the admin: the backlog, and how long its oldest event has waited (database clock).
LAG = """
SELECT count(*) AS unpublished, now() - min(at) AS oldest_waiting
FROM outbox_event WHERE published_at IS NULL
"""

ANY_NEW = "SELECT EXISTS (SELECT FROM outbox_event WHERE seq IS NULL) AS any"

# Published rows only: an event the relay could not deliver yet stays for it, however old.
PRUNE = """
DELETE FROM outbox_event WHERE id IN (
    SELECT id FROM outbox_event
    WHERE at < now() - %(retention)s AND published_at IS NOT NULL
    ORDER BY at
    LIMIT %(limit)s
)
"""
