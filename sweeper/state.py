"""Reads and guarded writes of the sweeper's state row (sweeper.models.SweeperState), all on
the database's clock. Each write repeats its guard, so two sweeps at once change each fact
once: one of them engages the brake, one of them records that the platform hears again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from common.sql import execute, fetch_one
from sweeper import stats

ENSURE = "INSERT INTO sweeper_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING"

READ = """
SELECT s.*, now() AS now,
       now() - greatest(s.runtimes_swept_at, s.tasks_swept_at) AS since_last_sweep,
       now() - s.heard_since AS heard_for
FROM sweeper_state AS s WHERE s.id = 1
"""

# Committed without waiting for the disk (synchronous_commit off for this statement's own
# transaction): lost in a crash, a record only makes the next sweep see a gap and give more
# grace, and the idle sweep, every 30 s, does not wait for a flush.
RECORD_SWEEP = """
UPDATE sweeper_state SET {column} = now()
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush
WHERE id = 1
"""
# The same, and the run's duration into its histogram (sweeper.stats), in one round trip.
RECORD_SWEEP_RUN = "WITH run AS ({record_run}) " + RECORD_SWEEP
SWEPT_AT = {"runtimes": "runtimes_swept_at", "tasks": "tasks_swept_at"}

# Once per gap: a later sweep of the same gap finds `heard_since` after the last sweep.
HEARD_AFTER_GAP = """
UPDATE sweeper_state SET heard_since = now()
WHERE id = 1
  AND greatest(runtimes_swept_at, tasks_swept_at) < now() - %(stale_after)s
  AND (heard_since IS NULL OR heard_since < greatest(runtimes_swept_at, tasks_swept_at))
RETURNING heard_since
"""

SILENT_AFTER = """
UPDATE sweeper_state SET silent_after = %(last_heard)s
WHERE id = 1 AND silent_after IS NULL
RETURNING silent_after
"""

HEARD_AFTER_SILENCE = """
UPDATE sweeper_state
SET heard_since = greatest(heard_since, %(first_heard)s), silent_after = NULL
WHERE id = 1 AND silent_after = %(silent_after)s
RETURNING heard_since
"""

ENGAGE_BRAKE = """
UPDATE sweeper_state
SET brake_engaged_at = now(), brake_online = %(online)s, brake_stale = %(stale)s,
    brake_released_at = NULL, brake_released_by = ''
WHERE id = 1 AND brake_engaged_at IS NULL
RETURNING brake_engaged_at
"""

RELEASE_BRAKE = """
UPDATE sweeper_state
SET brake_engaged_at = NULL, brake_released_at = now(), brake_released_by = %(by)s
WHERE id = 1 AND brake_engaged_at IS NOT NULL
  AND (%(engaged_at)s::timestamptz IS NULL OR brake_engaged_at = %(engaged_at)s)
RETURNING brake_released_at
"""

MOVE_GC_CURSOR = """
UPDATE sweeper_state SET gc_after_offline_at = %(after_at)s, gc_after_id = %(after_id)s
WHERE id = 1
"""

# Read only (no row made): a health check must not write.
SWEEP_AGES = """
SELECT now() - s.runtimes_swept_at AS runtimes, now() - s.tasks_swept_at AS tasks
FROM sweeper_state AS s WHERE s.id = 1
"""

COUNT_CONTRADICTED_RUNTIME = """
UPDATE sweeper_state SET contradicted_runtimes = contradicted_runtimes + 1 WHERE id = 1
"""


@dataclass(frozen=True)
class State:
    id: int
    runtimes_swept_at: datetime | None
    tasks_swept_at: datetime | None
    heard_since: datetime | None
    silent_after: datetime | None
    brake_engaged_at: datetime | None
    brake_online: int | None
    brake_stale: int | None
    brake_released_at: datetime | None
    brake_released_by: str
    contradicted_runtimes: int
    gc_after_offline_at: datetime | None
    gc_after_id: UUID | None
    now: datetime
    since_last_sweep: timedelta | None  # None: no sweep recorded yet
    heard_for: timedelta | None  # None: the platform never failed to hear


def read() -> State:
    """The state row, made on first use."""
    current = fetch_one(READ, into=State)
    if current is None:
        execute(ENSURE)
        current = fetch_one(READ, into=State)
    return current


def peek() -> State | None:
    """The state row, or None before the first sweep: a read that writes nothing."""
    return fetch_one(READ, into=State)


def record_sweep(sweep: str, *, seconds: float | None = None) -> None:
    """The sweep ("runtimes" or "tasks") succeeded, now, after `seconds` (if given)."""
    record = RECORD_SWEEP.format(column=SWEPT_AT[sweep])
    if seconds is None:
        recorded = execute(record)
    else:
        with_run = RECORD_SWEEP_RUN.format(column=SWEPT_AT[sweep], record_run=stats.RECORD_RUN)
        recorded = execute(with_run, **stats.run_params(sweep, seconds))
    if not recorded:  # the run, if any, is recorded already: only the state row was missing
        execute(ENSURE)
        execute(record)


def sweep_ages() -> dict[str, timedelta | None]:
    """How long ago each sweep last succeeded, on the database's clock (None: never)."""
    row = fetch_one(SWEEP_AGES)
    return {sweep: row and getattr(row, sweep) for sweep in SWEPT_AT}


def heard_after_gap(*, stale_after: timedelta) -> bool:
    return fetch_one(HEARD_AFTER_GAP, stale_after=stale_after) is not None


def silent_after(last_heard: datetime) -> bool:
    return fetch_one(SILENT_AFTER, last_heard=last_heard) is not None


def heard_after_silence(*, silent_after: datetime, first_heard: datetime) -> bool:
    row = fetch_one(HEARD_AFTER_SILENCE, silent_after=silent_after, first_heard=first_heard)
    return row is not None


def engage_brake(*, online: int, stale: int) -> bool:
    return fetch_one(ENGAGE_BRAKE, online=online, stale=stale) is not None


def release_brake(*, by: str, engaged_at: datetime | None = None) -> bool:
    """Releases the brake (only the engagement of `engaged_at`, if given); whether it did."""
    return fetch_one(RELEASE_BRAKE, by=by, engaged_at=engaged_at) is not None


def move_gc_cursor(*, after_at: datetime | None, after_id: UUID | None) -> None:
    execute(MOVE_GC_CURSOR, after_at=after_at, after_id=after_id)


def count_contradicted_runtime() -> None:
    if not execute(COUNT_CONTRADICTED_RUNTIME):
        execute(ENSURE)
        execute(COUNT_CONTRADICTED_RUNTIME)
