"""The outbox's named SQL (executed by common.sql)."""

from outbox.wire import frame_columns

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
SELECT {frame_columns("outbox_event")} FROM outbox_event
WHERE workspace_id = %(workspace_id)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s
"""

# The relay's serialization: a transaction-level advisory lock (first key: the product's lock
# space, as sweeper.locks), freed by the commit or by the death of the session.
TRY_RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(%(space)s, %(key)s) AS acquired"

# Numbers up to `limit` new rows, in id order, each workspace's continuing from its head, and
# returns them as their frames. Rows are visible here only once their transactions committed,
# so a row whose transaction commits later is numbered later: nothing is skipped, and `seq`
# follows commit order.
NUMBER_NEW = f"""
WITH batch AS (
    SELECT id, workspace_id FROM outbox_event WHERE seq IS NULL ORDER BY id LIMIT %(limit)s
), numbered AS (
    SELECT id, workspace_id, row_number() OVER (PARTITION BY workspace_id ORDER BY id) AS n
    FROM batch
), counts AS (
    SELECT workspace_id, count(*) AS n FROM batch GROUP BY workspace_id
), heads AS (
    INSERT INTO outbox_head (workspace_id, seq, published_seq)
    SELECT workspace_id, n, 0 FROM counts
    ON CONFLICT (workspace_id) DO UPDATE SET seq = outbox_head.seq + excluded.seq
    RETURNING workspace_id, seq
)
UPDATE outbox_event AS e
SET seq = heads.seq - counts.n + numbered.n
FROM numbered
JOIN counts USING (workspace_id)
JOIN heads USING (workspace_id)
WHERE e.id = numbered.id
RETURNING {frame_columns("e")}
"""

# The workspaces whose numbered events are not all published: one index entry each.
PENDING = """
SELECT workspace_id, published_seq, seq FROM outbox_head WHERE published_seq < seq
"""

# Up to `limit` numbered events past their workspaces' watermarks, in `seq` order within each;
# each workspace's from its watermark on, so publishing a prefix keeps the watermark exact.
UNPUBLISHED = f"""
SELECT e.* FROM outbox_head AS h
CROSS JOIN LATERAL (
    SELECT {frame_columns("e")} FROM outbox_event AS e
    WHERE e.workspace_id = h.workspace_id AND e.seq > h.published_seq AND e.seq <= h.seq
    ORDER BY e.seq
    LIMIT %(limit)s
) AS e
WHERE h.published_seq < h.seq
ORDER BY e.workspace_id, e.seq
LIMIT %(limit)s
"""

MARK_PUBLISHED = """
UPDATE outbox_head AS h SET published_seq = greatest(h.published_seq, v.seq)
FROM unnest(%(workspace_ids)s::uuid[], %(seqs)s::bigint[]) AS v (workspace_id, seq)
WHERE h.workspace_id = v.workspace_id
"""

# Recorded and not yet published: new rows, and numbered rows past their heads' watermarks.
_WAITING = """
(SELECT count(*) FROM outbox_event WHERE seq IS NULL)
+ (SELECT coalesce(sum(seq - published_seq), 0) FROM outbox_head WHERE published_seq < seq)
"""

# For the admin: the backlog, and how long its oldest event has waited (database clock). The
# oldest numbered one waiting is each pending workspace's first past its watermark.
LAG = f"""
SELECT {_WAITING} AS unpublished,
       now() - least(
           (SELECT min(at) FROM outbox_event WHERE seq IS NULL),
           (SELECT min(e.at) FROM outbox_head AS h
            JOIN outbox_event AS e
              ON e.workspace_id = h.workspace_id AND e.seq = h.published_seq + 1
            WHERE h.published_seq < h.seq)
       ) AS oldest_waiting
"""

ANY_NEW = "SELECT EXISTS (SELECT FROM outbox_event WHERE seq IS NULL) AS any"

# Published rows only: an event the relay could not deliver yet stays for it, however old.
PRUNE = """
DELETE FROM outbox_event WHERE id IN (
    SELECT e.id FROM outbox_event AS e
    JOIN outbox_head AS h ON h.workspace_id = e.workspace_id AND e.seq <= h.published_seq
    WHERE e.at < now() - %(retention)s
    ORDER BY e.at
    LIMIT %(limit)s
)
"""

# For the metrics: published ever is the sum of the watermarks, whatever was pruned. Reads one
# row a workspace, and the new rows' entries of their partial index.
BACKLOG = f"""
SELECT (SELECT coalesce(sum(published_seq), 0) FROM outbox_head) AS published,
       {_WAITING} AS unpublished
"""
