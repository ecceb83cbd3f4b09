"""The runtime sweep's guarded steps, each inside the caller's transaction: runtimes that
stopped heartbeating go offline, and offline runtimes whose work may be left are found and, once
that work has failed, settled. The chunk loop around them is the sweeper's."""

from datetime import datetime, timedelta
from uuid import UUID

from common.signals import send_in_transaction
from common.sql import execute, fetch
from runtimes import queries
from runtimes.changes import RuntimeChange
from runtimes.signals import runtimes_changed, runtimes_went_offline


def mark_stale_offline(*, stale_after: timedelta, limit: int) -> list[RuntimeChange]:
    """Up to `limit` `online` runtimes unseen for longer than `stale_after` (database clock)
    go offline; returns them and announces them in the transaction. Announced before whatever the
    caller does next in the transaction, so a frontend hears that the runtime went offline
    before it hears about the tasks and agents that went with it."""
    marked = fetch(
        queries.MARK_STALE_OFFLINE, into=RuntimeChange, stale_after=stale_after, limit=limit
    )
    if marked:
        send_in_transaction(runtimes_went_offline, sender=RuntimeChange, runtimes=marked)
    return marked


def offline_with_work_due(
    *, after: UUID, limit: int, grace: timedelta, judge_stale: bool
) -> list[UUID]:
    """Up to `limit` offline runtimes that may still hold dispatched or running tasks, and
    whose work is due: deregistered ones, and, if `judge_stale`, those offline longer than
    `grace`. In id order after `after`, locked for the transaction; runtimes others hold are
    stepped around."""
    rows = fetch(
        queries.OFFLINE_WITH_WORK_DUE,
        after=after,
        limit=limit,
        grace=grace,
        judge_stale=judge_stale,
    )
    return [row.id for row in rows]


def settle_work_pending(*, runtime_ids: list[UUID]) -> None:
    """Records, for those of `runtime_ids` that are offline, whether live work is left."""
    execute(queries.SETTLE_WORK_PENDING, runtime_ids=runtime_ids)


def collection_candidates(
    *, gc_after: timedelta, after_at: datetime, after_id: UUID, limit: int
) -> list:
    """Up to `limit` runtimes offline longer than `gc_after`, oldest first, after the cursor
    (`after_at`, `after_id`): rows with `id` and `offline_at`."""
    return fetch(
        queries.GC_CANDIDATES, gc_after=gc_after, after_at=after_at, after_id=after_id, limit=limit
    )


def lock_collectable(*, runtime_ids: list[UUID], gc_after: timedelta) -> list[RuntimeChange]:
    """Within the caller's transaction: those of `runtime_ids` still offline longer than
    `gc_after`, with no agent bound and no queued or live task, locked."""
    return fetch(
        queries.LOCK_COLLECTABLE, into=RuntimeChange, runtime_ids=runtime_ids, gc_after=gc_after
    )


def delete_runtimes(*, runtime_ids: list[UUID]) -> list[RuntimeChange]:
    """Deletes the runtimes (locked by the caller, their tasks detached); announced as
    `runtime_gc` in the transaction."""
    deleted = fetch(queries.DELETE_RUNTIMES, into=RuntimeChange, runtime_ids=runtime_ids)
    if deleted:
        send_in_transaction(
            runtimes_changed, sender=RuntimeChange, action="runtime_gc", runtimes=deleted
        )
    return deleted
