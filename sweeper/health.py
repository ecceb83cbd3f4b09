"""The dead-man's switch on beat and the worker: both sweeps must have succeeded recently.

A sweep that has not succeeded within a few intervals means beat stopped sending, no worker
takes the ticks, or every run fails; each of these looks the same from outside, and all of them
leave runtimes unjudged. Judged on the database's clock, from the times the sweeps record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sweeper import state

# Missed ticks tolerated before the switch trips: one late tick is load, three are an outage.
MISSED_INTERVALS = 3


@dataclass(frozen=True)
class Health:
    reasons: list[str]  # empty while healthy
    ages: dict[str, timedelta | None]  # since each sweep's last success; None: never
    limit: timedelta

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict:
        return {
            "status": "ok" if self.ok else "failing",
            "reasons": self.reasons,
            "limit_seconds": self.limit.total_seconds(),
            "last_success_seconds_ago": {
                sweep: None if age is None else round(age.total_seconds(), 3)
                for sweep, age in self.ages.items()
            },
        }


def blind(current: state.State | None, *, stale_after: timedelta) -> bool:
    """Whether runtimes go unjudged now because the platform could not hear: the fleet is
    silent, or it heard again less than a stale threshold ago."""
    if current is None:
        return False
    if current.silent_after is not None:
        return True
    return current.heard_for is not None and current.heard_for < stale_after


def check(*, interval: timedelta) -> Health:
    """Whether both sweeps succeeded within MISSED_INTERVALS x `interval`, with the reasons
    if not."""
    limit = MISSED_INTERVALS * interval
    ages = state.sweep_ages()
    reasons = []
    for sweep, age in ages.items():
        if age is None:
            reasons.append(f"the {sweep} sweep has never succeeded")
        elif age > limit:
            reasons.append(
                f"the {sweep} sweep last succeeded {age.total_seconds():.0f} s ago"
                f" (limit {limit.total_seconds():.0f} s)"
            )
    return Health(reasons=reasons, ages=ages, limit=limit)
