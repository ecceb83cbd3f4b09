"""The product's metrics, the one place that knows prometheus_client: what a process counts in
its own memory (the heartbeats), families built from what other processes wrote to the
database, and their rendering in Prometheus' text format for GET /metrics.

Across processes: the web process runs several workers, each counting its own heartbeats, so
`multica.web` gives them a directory of their own (PROMETHEUS_MULTIPROC_DIR, prometheus_client's
multiprocess mode) and a scrape adds up every worker's file. A single-process server (daphne)
counts in memory. What the Celery worker does is counted in PostgreSQL (sweeper.stats) and read
at scrape, as families built here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# A heartbeat's answer, by its HTTP status.
HEARTBEAT_RESULTS = {
    200: "ok",
    400: "bad_request",
    401: "unauthorized",
    404: "unknown_runtime",
    405: "bad_request",
    413: "bad_request",
}
OTHER = "error"

# A `_created` series per counter tells Prometheus nothing a restart's reset does not.
disable_created_metrics()
_in_process = CollectorRegistry(auto_describe=True)
_heartbeats = Counter(
    "multica_heartbeats",
    "Daemon heartbeats answered by this server, by result.",
    ["result"],
    registry=_in_process,
)
# Made once: a heartbeat then costs a dict lookup and an add, not a label lookup.
_heartbeat_by_result = {
    result: _heartbeats.labels(result) for result in {*HEARTBEAT_RESULTS.values(), OTHER}
}


def count_heartbeat(status: int) -> None:
    """A heartbeat was answered with HTTP `status`."""
    if settings.METRICS_HEARTBEATS:
        _heartbeat_by_result[HEARTBEAT_RESULTS.get(status, OTHER)].inc()


def counter(name: str, documentation: str, samples: Mapping[str, float], label: str) -> Metric:
    """A counter family from values counted elsewhere, one per value of `label`; `name`
    without `_total`."""
    return _labelled(CounterMetricFamily(name, documentation, labels=[label]), samples)


def gauge(name: str, documentation: str, samples: Mapping[str, float], label: str) -> Metric:
    return _labelled(GaugeMetricFamily(name, documentation, labels=[label]), samples)


def _labelled(family: Metric, samples: Mapping[str, float]) -> Metric:
    for value_of_label, value in samples.items():
        family.add_metric([value_of_label], value)
    return family


def plain_counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def plain_gauge(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def histogram(
    name: str,
    documentation: str,
    label: str,
    bounds: Sequence[float],
    samples: Mapping[str, tuple[Sequence[int], float]],
) -> Metric:
    """A histogram family from per-bucket (not cumulative) counts, one per bound and then
    +Inf, and the sum, for each value of `label`."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value_of_label, (counts, total) in samples.items():
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([value_of_label], buckets, sum_value=total)
    return family


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]):
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> bytes:
    """This server's own metrics (all its workers', in multiprocess mode) and `families`, in
    Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROCESS_DIR):
        MultiProcessCollector(registry)
    else:
        registry.register(_Families(_in_process.collect()))
    registry.register(_Families(families))
    return generate_latest(registry)
