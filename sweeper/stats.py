"""What the sweeps did, counted in PostgreSQL for the metrics (GET /metrics): each sweep's runs
and durations, the runtimes marked offline and the tasks failed by reason.

In the database rather than in the worker's memory because the worker is not what Prometheus
scrapes (the web process serves /metrics), a worker that restarts would lose its counts, and
two workers, or `manage.py sweep`, sweep too. A chunk's counts commit with the chunk; a chunk
that changed nothing writes nothing, so the idle sweep's only write stays its record of
success (sweeper.state.record_sweep), which carries its duration."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

from common.sql import execute, fetch
from sweeper.results import SweepResult

# Upper bounds, in seconds, of the sweep duration histogram. An idle sweep takes milliseconds,
# a mass outage's some seconds, and the soft time limit (sweeper.tasks) stops one at 120 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

# Ordered by key, so that two chunks committing at once lock the counter rows in one order.
COUNT = """
INSERT INTO sweeper_counter AS c (metric, label, value)
SELECT * FROM unnest(%(metrics)s::text[], %(labels)s::text[], %(values)s::bigint[])
ORDER BY 1, 2
ON CONFLICT (metric, label) DO UPDATE SET value = c.value + EXCLUDED.value
"""

# Written by sweeper.state.record_sweep's statement, beside the time of the success.
RECORD_RUN = """
INSERT INTO sweeper_sweep_stat AS s (sweep, runs, seconds_sum, bucket_counts)
VALUES (%(sweep)s, 1, %(seconds)s, %(first_counts)s::bigint[])
ON CONFLICT (sweep) DO UPDATE
SET runs = s.runs + 1, seconds_sum = s.seconds_sum + EXCLUDED.seconds_sum,
    bucket_counts[%(bucket)s] = s.bucket_counts[%(bucket)s] + 1
"""

COUNTERS = "SELECT metric, label, value FROM sweeper_counter"
RUNS = "SELECT sweep, runs, seconds_sum, bucket_counts FROM sweeper_sweep_stat"


@dataclass(frozen=True)
class SweepRuns:
    sweep: str
    runs: int
    seconds_sum: float
    bucket_counts: list[int]  # per bucket of BUCKETS, then +Inf; not cumulative


def count_changes(result: SweepResult) -> None:
    """Inside the chunk's transaction: adds what it changed to the counters."""
    counts = Counter({("runtimes_marked_offline", ""): len(result.runtimes_marked_offline)})
    counts.update(("tasks_failed", task.failure_reason) for task in result.tasks_failed)
    counts = {key: n for key, n in counts.items() if n}
    if counts:
        metrics, labels = zip(*counts, strict=True)
        execute(COUNT, metrics=list(metrics), labels=list(labels), values=list(counts.values()))


def run_params(sweep: str, seconds: float) -> dict:
    """The parameters of RECORD_RUN for one run of `sweep` that took `seconds`."""
    index = bisect.bisect_left(BUCKETS, seconds)  # the first bound >= seconds; len: +Inf
    first_counts = [0] * (len(BUCKETS) + 1)
    first_counts[index] = 1
    return {"sweep": sweep, "seconds": seconds, "first_counts": first_counts, "bucket": index + 1}


def counters() -> dict[tuple[str, str], int]:
    return {(row.metric, row.label): row.value for row in fetch(COUNTERS)}


def runs() -> list[SweepRuns]:
    return fetch(RUNS, into=SweepRuns)
