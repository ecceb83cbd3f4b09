"""A socket's place in its workspace's stream: the outbox's `seq`, the `?after=` cursor, and the
reads a socket catches up with (outbox.replay, off the event loop).

The messages of the stream itself (README, "Events over the WebSocket"):
- `{"type": "sync:hello", "seq": <head>}`, first, to a socket opened without `after`: events
  after `seq` follow;
- `{"type": "sync:reset", "seq": <head>}`, when what the client missed is no longer retained,
  or its cursor is ahead of the workspace: it refetches its state, and events after `seq`
  follow.
"""

import re
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from outbox import replay

HELLO, RESET = "sync:hello", "sync:reset"
# Events a catch-up reads at a time: a client away for a day costs a page of memory, not a day.
PAGE_SIZE = 500
# `seq` is a bigint.
_MAX_SEQ = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")

head = database_sync_to_async(replay.head_seq)
oldest = database_sync_to_async(replay.oldest_seq)
page_after = database_sync_to_async(replay.events_after)


def parse_after(query_string: bytes) -> int | None:
    """The `after` cursor of a socket's query string, None without one. Raises ValueError
    unless it is given once, as a whole number of at least 0."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("after")
    if values is None:
        return None
    if len(values) != 1 or not _DIGITS.fullmatch(values[0]) or int(values[0]) > _MAX_SEQ:
        raise ValueError(f"after must be a whole number of at least 0, got {values!r}")
    return int(values[0])


def must_reset(after: int, head_seq: int, oldest_seq: int | None) -> bool:
    """Whether a client that has everything up to `after` cannot be caught up: it is ahead of
    the head, or some event it missed has been pruned."""
    if after >= head_seq:
        return after > head_seq
    return oldest_seq is None or oldest_seq > after + 1


def sync(type_: str, seq: int) -> dict:
    return {"type": type_, "seq": seq}
