"""The sweeps' thresholds, as durations, from the settings (which read them, in whole
seconds, from the environment). Interfaces pass these to the sweeps; the sweeps take nothing
from settings themselves, so tests and benchmarks hand them any thresholds they like."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings


@dataclass(frozen=True)
class Thresholds:
    stale_after: timedelta
    dispatch_timeout: timedelta
    running_timeout: timedelta

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            stale_after=timedelta(seconds=settings.RUNTIME_STALE_SECONDS),
            dispatch_timeout=timedelta(seconds=settings.TASK_DISPATCH_TIMEOUT_SECONDS),
            running_timeout=timedelta(seconds=settings.TASK_RUNNING_TIMEOUT_SECONDS),
        )
