"""The relay: numbers committed events, publishes them to their workspaces' channel-layer
groups in `seq` order, and marks them published.

The cure for sequences that commit out of order: `seq` is not taken when a row is written but
given by the relay, one serialized reader (a PostgreSQL advisory lock), to rows it can see,
that is rows whose transactions have committed. A row whose transaction commits later is seen,
and numbered, later; no reader ever skips a row because of a cursor moved past it.

Each step is two transactions under the lock: the first numbers new rows and commits, so a
`seq` once published is never given again; the second publishes what is numbered and not yet
published, in `seq` order, and moves each workspace's watermark (outbox_head.published_seq)
past it. Usually that is exactly what the first numbered, and its rows are published as the
numbering returned them; what an earlier step left (a failed publish, another relay between the
two transactions) is read from the outbox first. A step that cannot publish (channel layer
down) leaves the rows numbered, in order, for the next step. A crash between publishing and
moving the watermark publishes a batch twice, with the same `seq`s; clients drop what they have
by `seq`.

It runs right after each commit that recorded events (the fast path, `relay_after_commit`) and
every few seconds from beat (`relay`, realtime.tasks). Only one process relays at a time; the
others leave at once, and the one relaying looks again for new rows after it let go of the
lock, so a commit that found the lock taken is never left for the catch-up.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from common.sql import execute, fetch, fetch_one
from outbox import queries
from outbox.wire import group_name, to_frame

logger = logging.getLogger(__name__)

BATCH_MESSAGE_TYPE = "events.batch"
# 500 task events are ~180 KB of msgpack: far from any Redis limit, yet 10,000 events make only 20
# messages, well within a consumer channel's capacity (CHANNEL_LAYERS["default"]).
EVENTS_PER_MESSAGE = 500
# Rows a step numbers and publishes: a mass outage's chunk in one go, and a transaction that
# stays short while it waits on the channel layer.
STEP_SIZE = 5000
# A commit's relay stops after this many full steps and leaves the rest to the catch-up, so a
# request or a sweep is never held relaying a backlog that others keep growing.
AFTER_COMMIT_STEPS = 4
# Never longer than this waiting on the channel layer, per step.
PUBLISH_TIMEOUT_SECONDS = 1.0
# After a failure, commits skip publishing for this long instead of each waiting out the
# timeout (a mass-outage sweep commits a chunk a fraction of a second); the catch-up still tries.
RETRY_AFTER_SECONDS = 5.0
_layer_down_until = 0.0

# The relay's advisory lock: (sweeper.locks.LOCK_SPACE, a key of its own).
LOCK_SPACE = 0x5EE9
LOCK_KEY = 0x0E7B0C5


@dataclass
class RelayResult:
    numbered: int = 0
    published: int = 0
    failed: bool = False  # the channel layer refused or was skipped as down
    busy: bool = False  # another process was relaying


def relay_after_commit() -> None:
    """The fast path, run after a commit that recorded events."""
    relay(max_steps=AFTER_COMMIT_STEPS, skip_if_down=True)


def relay(*, max_steps: int, skip_if_down: bool = False) -> RelayResult:
    """Steps until nothing new is left (or `max_steps`, or the channel layer fails). With
    `skip_if_down`, a channel layer that failed in the last RETRY_AFTER_SECONDS is not tried."""
    total = RelayResult()
    for _ in range(max_steps):
        step = _step(skip_if_down=skip_if_down)
        total.numbered += step.numbered
        total.published += step.published
        total.failed, total.busy = step.failed, step.busy
        if step.busy or step.failed:
            break
        full = max(step.numbered, step.published) >= STEP_SIZE
        # Looked at after the lock is let go: whoever found it taken had committed by then.
        if not full and not fetch_one(queries.ANY_NEW).any:
            break
    return total


def _step(*, skip_if_down: bool) -> RelayResult:
    with transaction.atomic():
        if not _locked():
            return RelayResult(busy=True)
        numbered = fetch(queries.NUMBER_NEW, limit=STEP_SIZE)
    with transaction.atomic():
        # Another relay may have come between: it published in order, as this one does.
        if not _locked():
            return RelayResult(numbered=len(numbered), busy=True)
        pending = fetch(queries.PENDING)
        if not pending:
            return RelayResult(numbered=len(numbered))
        if _is_all_pending(numbered, pending):
            rows = numbered
        else:
            rows = fetch(queries.UNPUBLISHED, limit=STEP_SIZE)
        rows.sort(key=_stream_order)
        frames = [(row.workspace_id, to_frame(row)) for row in rows]
        if not publish(frames, skip_if_down=skip_if_down):
            return RelayResult(numbered=len(numbered), failed=True)
        last = {row.workspace_id: row.seq for row in rows}  # rows are in seq order
        execute(queries.MARK_PUBLISHED, workspace_ids=list(last), seqs=list(last.values()))
        return RelayResult(numbered=len(numbered), published=len(rows))


def _is_all_pending(rows: list, pending: list) -> bool:
    """Whether `rows` are exactly the events between the pending heads' watermarks and heads."""
    ranges = {head.workspace_id: (head.published_seq, head.seq) for head in pending}
    if len(rows) != sum(top - low for low, top in ranges.values()):
        return False
    # `seq`s are unique in a workspace: as many rows as the ranges hold, each inside its range.
    no_range = (0, 0)
    return all(
        low < row.seq <= top
        for row in rows
        for low, top in [ranges.get(row.workspace_id, no_range)]
    )


def _stream_order(row) -> tuple:
    return (row.workspace_id, row.seq)


def _locked() -> bool:
    """The relay's lock, for the current transaction, if no other session holds it."""
    return fetch_one(queries.TRY_RELAY_LOCK, space=LOCK_SPACE, key=LOCK_KEY).acquired


def publish(frames: list[tuple], *, skip_if_down: bool = False) -> bool:
    """Sends `frames`, (workspace id, frame) pairs in `seq` order within each workspace, to
    their groups, batched. Never raises and never takes longer than PUBLISH_TIMEOUT_SECONDS;
    whether they were sent."""
    global _layer_down_until
    if skip_if_down and time.monotonic() < _layer_down_until:
        logger.warning("outbox.publish_skipped", extra={"events": len(frames)})
        return False
    try:
        async_to_sync(_send)(list(batches(frames)))
    except (TimeoutError, OSError, RedisError) as exc:
        _layer_down_until = time.monotonic() + RETRY_AFTER_SECONDS
        logger.error("outbox.publish_failed", extra={"events": len(frames), "error": repr(exc)})
        return False
    except Exception:
        # A bug, not an outage: worth a traceback, and no reason to pause publishing.
        logger.exception("outbox.publish_failed", extra={"events": len(frames)})
        return False
    _layer_down_until = 0.0
    return True


def batches(frames: Iterable[tuple]) -> Iterator[tuple[str, dict]]:
    """(group, channel-layer message) pairs, each message a batch of one workspace's frames."""
    by_group = defaultdict(list)
    for workspace_id, item in frames:
        by_group[group_name(workspace_id)].append(item)
    for group, items in by_group.items():
        for start in range(0, len(items), EVENTS_PER_MESSAGE):
            chunk = items[start : start + EVENTS_PER_MESSAGE]
            yield group, {"type": BATCH_MESSAGE_TYPE, "events": chunk}


async def _send(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
        # In order: a workspace's events reach its group in `seq` order.
        for group, message in messages:
            await layer.group_send(group, message)
