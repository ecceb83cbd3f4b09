"""The sweeps' rules, as durations and numbers, from the settings (which read them from the
environment). Interfaces pass these to the sweeps; the sweeps take nothing from settings
themselves, so tests and benchmarks hand them any rules they like."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings


@dataclass(frozen=True)
class Rules:
    """When a runtime or a task is judged, and the guards around the judging. The defaults
    are the plain rules (no reconnect grace, no second attempt); `from_settings` gives the
    deployment's."""

    stale_after: timedelta = timedelta(seconds=45)
    dispatch_timeout: timedelta = timedelta(seconds=300)
    running_timeout: timedelta = timedelta(seconds=9000)
    # A running task its daemon vouches for (lists in heartbeats) is stopped only after this.
    max_running: timedelta = timedelta(seconds=86400)
    # A live task its daemon no longer lists fails once missing this long.
    orphan_grace: timedelta = timedelta(seconds=30)
    # A task the sweeper fails is queued again while its attempt is below this.
    max_attempts: int = 1
    # A task queued this long, never claimed, fails.
    queued_ttl: timedelta = timedelta(seconds=7200)
    # A runtime offline this long, with no agent and no live task, is deleted.
    gc_after: timedelta = timedelta(days=7)
    # How long a runtime may be offline before its tasks fail.
    reconnect_grace: timedelta = timedelta(0)
    # The daemons' heartbeat period: a fleet silent that long means the platform is deaf.
    heartbeat_period: timedelta = timedelta(seconds=15)
    # A sweep taking more than this share of the online runtimes offline engages the brake...
    brake_fraction: float = 0.5
    # ...with at least this many online; fewer switch off both the brake and fleet silence.
    brake_min_runtimes: int = 20

    @classmethod
    def from_settings(cls) -> Rules:
        return cls(
            stale_after=timedelta(seconds=settings.RUNTIME_STALE_SECONDS),
            dispatch_timeout=timedelta(seconds=settings.TASK_DISPATCH_TIMEOUT_SECONDS),
            running_timeout=timedelta(seconds=settings.TASK_RUNNING_TIMEOUT_SECONDS),
            max_running=timedelta(seconds=settings.TASK_MAX_RUNNING_SECONDS),
            orphan_grace=timedelta(seconds=settings.TASK_ORPHAN_GRACE_SECONDS),
            max_attempts=settings.TASK_MAX_ATTEMPTS,
            queued_ttl=timedelta(seconds=settings.TASK_QUEUED_TTL_SECONDS),
            gc_after=timedelta(seconds=settings.RUNTIME_GC_AFTER_SECONDS),
            reconnect_grace=timedelta(seconds=settings.RUNTIME_RECONNECT_GRACE_SECONDS),
            heartbeat_period=timedelta(seconds=settings.RUNTIME_HEARTBEAT_SECONDS),
            brake_fraction=settings.SWEEP_BRAKE_FRACTION,
            brake_min_runtimes=settings.SWEEP_BRAKE_MIN_RUNTIMES,
        )
