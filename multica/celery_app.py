"""The Celery app: configuration from Django settings (`CELERY_*`), tasks from each app's
`tasks.py`, and the beat schedule of the two sweeps, driven by SWEEP_INTERVAL_SECONDS."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")

app = Celery("multica")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Collecting long-offline runtimes is housekeeping, not a verdict: a tenth as often.
GC_EVERY_SWEEPS = 10


def beat_schedule(interval_seconds: int, relay_seconds: int = 2) -> dict:
    """Both sweeps every `interval_seconds`, the collection of long-offline runtimes every
    GC_EVERY_SWEEPS intervals and the pruning of old events with it; the events' relay every
    `relay_seconds`. A tick not started within its interval expires: after a worker outage the
    backlog is dropped, not replayed in a burst."""
    options = {"expires": interval_seconds}
    gc_seconds = interval_seconds * GC_EVERY_SWEEPS
    return {
        "relay-events": {
            "task": "realtime.relay_events",
            "schedule": relay_seconds,
            "options": {"expires": relay_seconds},
        },
        "prune-events": {
            "task": "realtime.prune_events",
            "schedule": gc_seconds,
            "options": {"expires": gc_seconds},
        },
        "collect-offline-runtimes": {
            "task": "runtimes.collect_offline_runtimes",
            "schedule": gc_seconds,
            "options": {"expires": gc_seconds},
        },
        "sweep-stale-runtimes": {
            "task": "runtimes.sweep_stale_runtimes",
            "schedule": interval_seconds,
            "options": options,
        },
        "sweep-stale-tasks": {
            "task": "tasks.sweep_stale_tasks",
            "schedule": interval_seconds,
            "options": options,
        },
    }


@app.on_after_configure.connect
def _schedule_sweeps(sender: Celery, **kwargs) -> None:
    # Here rather than at import: reading Django settings while `multica` itself is still
    # being imported (settings are part of the package) would be circular.
    from django.conf import settings

    sender.conf.beat_schedule = beat_schedule(
        settings.SWEEP_INTERVAL_SECONDS, settings.EVENT_RELAY_INTERVAL_SECONDS
    )
