"""What the fleet's heartbeats say, read for the sweeper's guards. Each read costs what it
counts or a few index entries, never the whole fleet: the idle sweep stays cheap at 100,000
runtimes, and a mass outage costs what it changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from common.sql import fetch_one

# The newest heartbeat is one entry of the online runtimes' `last_seen_at` index; whether at
# least `enough` runtimes are online reads no more than that many entries.
HEARING = """
SELECT last_heard, now() - last_heard AS silent_for,
       (SELECT count(*) FROM (
            SELECT 1 FROM agent_runtime WHERE status = 'online' LIMIT %(enough)s
        ) AS online) >= %(enough)s AS watched
FROM (SELECT max(last_seen_at) AS last_heard FROM agent_runtime WHERE status = 'online') AS m
"""

# The first heartbeat heard after `after`, from the same index. A runtime that has beaten
# twice since shows only its latest beat, so this is the latest possible moment, never earlier:
# the platform gives more grace, not less.
FIRST_HEARD_AFTER = """
SELECT min(last_seen_at) AS at FROM agent_runtime
WHERE status = 'online' AND last_seen_at > %(after)s
"""

# The runtimes a sweep would take offline now: a range of the same index, and of the never
# seen ones' by when they were made.
STALE_COUNT = """
SELECT (SELECT count(*) FROM agent_runtime
        WHERE status = 'online' AND last_seen_at < now() - %(stale_after)s)
     + (SELECT count(*) FROM agent_runtime
        WHERE status = 'online' AND last_seen_at IS NULL
          AND created_at < now() - %(stale_after)s) AS n
"""

ONLINE_UP_TO = """
SELECT count(*) AS n FROM (SELECT 1 FROM agent_runtime WHERE status = 'online' LIMIT %(up_to)s)
    AS online
"""

# Runtimes the sweeper found stale since `since` and that are still offline: a range of the
# offline runtimes' `offline_at` index.
STILL_OFFLINE_SINCE = """
SELECT count(*) AS n FROM agent_runtime
WHERE status = 'offline' AND offline_at >= %(since)s AND offline_reason IN ('stale', '')
"""

# Runtimes by status, for the metrics: each count from its status's partial index. (Offline
# ones are collected after RUNTIME_GC_AFTER_SECONDS, so neither grows with history.)
BY_STATUS = """
SELECT (SELECT count(*) FROM agent_runtime WHERE status = 'online') AS online,
       (SELECT count(*) FROM agent_runtime WHERE status = 'offline') AS offline
"""


@dataclass(frozen=True)
class Hearing:
    last_heard: datetime | None  # the newest heartbeat of an online runtime
    silent_for: timedelta | None  # how long ago that was (database clock)
    watched: bool  # enough runtimes online for their silence to mean something


def hearing(*, enough: int) -> Hearing:
    return fetch_one(HEARING, into=Hearing, enough=enough)


def first_heard_after(at: datetime) -> datetime | None:
    return fetch_one(FIRST_HEARD_AFTER, after=at).at


def stale_count(*, stale_after: timedelta) -> int:
    return fetch_one(STALE_COUNT, stale_after=stale_after).n


def online_count(*, up_to: int) -> int:
    """How many runtimes are online, counted no further than `up_to`."""
    return fetch_one(ONLINE_UP_TO, up_to=up_to).n


def still_offline_since(since: datetime) -> int:
    return fetch_one(STILL_OFFLINE_SINCE, since=since).n


def by_status() -> dict[str, int]:
    """How many runtimes are in each status."""
    return fetch_one(BY_STATUS)._asdict()
