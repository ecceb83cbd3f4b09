"""Reads of a workspace's stream for replay (`?after=`): its head, its retained events after a
cursor, in pages, and the oldest one retained."""

from uuid import UUID

from common.sql import fetch, fetch_one
from outbox import queries
from outbox.wire import to_frame


def head_seq(workspace_id: UUID | str) -> int:
    """The last `seq` given in the workspace; 0 before its first event."""
    row = fetch_one(queries.HEAD_SEQ, workspace_id=str(workspace_id))
    return row.seq if row else 0


def events_after(workspace_id: UUID | str, after: int, limit: int) -> list[dict]:
    """Up to `limit` of the workspace's numbered events with `seq > after`, in `seq` order, as
    frames (outbox.wire.to_frame)."""
    rows = fetch(queries.EVENTS_AFTER, workspace_id=str(workspace_id), after=after, limit=limit)
    return [to_frame(row) for row in rows]


def oldest_seq(workspace_id: UUID | str) -> int | None:
    """The `seq` of the oldest event retained, None when none is."""
    return fetch_one(queries.OLDEST_SEQ, workspace_id=str(workspace_id)).seq
