"""The outbox's periodic jobs, sent by beat: the relay's catch-up every
EVENT_RELAY_INTERVAL_SECONDS, the pruning of old events with the collection of runtimes."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from outbox.prune import prune_events as prune
from outbox.relay import relay

logger = logging.getLogger(__name__)

# A catch-up drains a backlog of this many steps (STEP_SIZE events each) a tick at most; the
# next tick goes on. Far above a mass outage's worth, within the soft limit below.
RELAY_STEPS = 50
JOB = {"ignore_result": True, "soft_time_limit": 60, "time_limit": 90}


@shared_task(name="realtime.relay_events", **JOB)
def relay_events() -> int:
    """Publishes what the relay after each commit missed (a killed process, a channel-layer
    outage); one relay at a time, the others return at once."""
    result = relay(max_steps=RELAY_STEPS)
    if result.numbered or result.published or result.failed:
        logger.info(
            "outbox.relayed",
            extra={
                "numbered": result.numbered,
                "published": result.published,
                "failed": result.failed,
            },
        )
    return result.published


@shared_task(name="realtime.prune_events", **JOB)
def prune_events() -> int:
    """Deletes published events older than EVENT_RETENTION_SECONDS, in chunks."""
    pruned = prune(retention=timedelta(seconds=settings.EVENT_RETENTION_SECONDS))
    logger.info("outbox.pruned", extra={"events": pruned})
    return pruned
