"""The metric families read from PostgreSQL at each scrape: what the sweeps did and their state
(written by whichever worker swept), the contradicted verdicts and the fleet by status. A few
single-row reads and two counts from partial indexes."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from common import metrics
from runtimes import fleet
from sweeper import health, state, stats
from tasks import steps as task_steps

SWEEPS = ("runtimes", "tasks")
SWEEPER_REASONS = ("runtime_offline", "timeout", "orphaned", "queued_expired")


def families() -> list:
    current = state.peek()
    counted = stats.counters()
    return [
        *_sweep_families(current),
        metrics.plain_counter(
            "multica_runtimes_marked_offline",
            "Runtimes the sweeper marked offline.",
            counted.get(("runtimes_marked_offline", ""), 0),
        ),
        metrics.counter(
            "multica_tasks_failed",
            "Tasks the sweeper failed, by failure reason.",
            {reason: counted.get(("tasks_failed", reason), 0) for reason in SWEEPER_REASONS},
            label="reason",
        ),
        metrics.counter(
            "multica_verdicts_contradicted",
            "Sweeper verdicts the evidence contradicted: a daemon reported on a task it had"
            " failed, or a runtime it had marked offline heartbeat within the grace.",
            {
                "task": task_steps.contradicted_count(),
                "runtime": current.contradicted_runtimes if current else 0,
            },
            label="kind",
        ),
        metrics.plain_gauge(
            "multica_sweeper_brake_engaged",
            "1 while the mass-outage brake holds the tasks of offline runtimes.",
            int(current is not None and current.brake_engaged_at is not None),
        ),
        metrics.plain_gauge(
            "multica_sweeper_blind",
            "1 while the platform could not hear heartbeats, or heard again for less than the"
            " stale threshold: runtimes are not judged.",
            int(health.blind(current, stale_after=_stale_after())),
        ),
        metrics.gauge("multica_runtimes", "Runtimes by status.", fleet.by_status(), label="status"),
    ]


def _sweep_families(current: state.State | None) -> list:
    runs = {run.sweep: run for run in stats.runs()}
    swept_at = {
        "runtimes": current and current.runtimes_swept_at,
        "tasks": current and current.tasks_swept_at,
    }
    return [
        metrics.histogram(
            "multica_sweep_duration_seconds",
            "How long each successful sweep took.",
            label="sweep",
            bounds=stats.BUCKETS,
            samples={
                sweep: (runs[sweep].bucket_counts, runs[sweep].seconds_sum)
                for sweep in SWEEPS
                if sweep in runs
            },
        ),
        metrics.gauge(
            "multica_sweep_last_success_timestamp_seconds",
            "When each sweep last succeeded (Unix time, the database's clock).",
            {sweep: _timestamp(at) for sweep, at in swept_at.items() if at is not None},
            label="sweep",
        ),
    ]


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.RUNTIME_STALE_SECONDS)


def _timestamp(at: datetime) -> float:
    return at.timestamp()
