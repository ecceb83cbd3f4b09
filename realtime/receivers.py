"""Forwards the domain signals, after commit, to the browsers of each workspace.

Events travel the channel layer in batches (one message carries up to EVENTS_PER_MESSAGE of
them, per workspace group) and the consumer writes each as its own WebSocket message: one
`group_send` per event costs a Redis round trip and, from sync code, an event loop, which caps
announcing at a few hundred events a second.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

BATCH_MESSAGE_TYPE = "events.batch"
# 500 task events are ~180 KB of msgpack: far from any Redis limit, yet 10,000 events make only 20
# messages, well within a consumer channel's capacity (CHANNEL_LAYERS["default"]).
EVENTS_PER_MESSAGE = 500
# A sweep never waits longer than this for the channel layer, per signal.
ANNOUNCE_TIMEOUT_SECONDS = 1.0
# After a failure, later signals skip the dead layer at once instead of each waiting out the
# timeout: a mass outage sweep sends a few signals per chunk.
RETRY_AFTER_SECONDS = 5.0
_layer_down_until = 0.0


def group_name(workspace_id: UUID | str) -> str:
    return f"workspace.{workspace_id}"


def event(type_: str, workspace_id: UUID, payload: dict) -> dict:
    return {
        "type": type_,
        "workspace_id": str(workspace_id),
        "actor_type": "system",
        "payload": payload,
    }


# --- Receivers of the domain signals (connected by realtime.apps) ------------------------------


def on_runtimes_went_offline(sender, runtimes, **kwargs) -> None:
    on_runtimes_changed(sender, action="stale_sweep", runtimes=runtimes)


def on_runtimes_changed(sender, action: str, runtimes, **kwargs) -> None:
    by_workspace = defaultdict(list)
    for runtime in runtimes:
        by_workspace[runtime.workspace_id].append(str(runtime.id))
    announce(
        event("daemon:register", workspace_id, {"action": action, "runtime_ids": ids})
        for workspace_id, ids in by_workspace.items()
    )


def on_tasks_failed(sender, tasks, **kwargs) -> None:
    announce(event("task:failed", task.workspace_id, task_payload(task)) for task in tasks)


def on_tasks_queued(sender, tasks, **kwargs) -> None:
    announce(
        event(
            "task:queued",
            task.workspace_id,
            {
                "task_id": str(task.id),
                "agent_id": str(task.agent_id),
                "issue_id": str(task.issue_id),
                "runtime_id": str(task.runtime_id),
                "status": "queued",
                "retry_of": str(task.retry_of_id),
                "attempt": task.attempt,
            },
        )
        for task in tasks
    )


def on_agents_status_changed(sender, agents, **kwargs) -> None:
    announce(
        event("agent:status", a.workspace_id, {"agent_id": str(a.id), "status": a.status})
        for a in agents
    )


def task_payload(task) -> dict:
    return {
        "task_id": str(task.id),
        "agent_id": str(task.agent_id),
        "issue_id": str(task.issue_id),
        "runtime_id": str(task.runtime_id) if task.runtime_id else None,
        "status": "failed",
        "failure_reason": task.failure_reason,
        "error": task.error,
        "retry_task_id": str(task.retry_task_id) if task.retry_task_id else None,
    }


def announce(events: Iterable[dict]) -> None:
    """Sends `events` to their workspaces' groups. Never raises and never takes longer than
    ANNOUNCE_TIMEOUT_SECONDS: the state change has committed, and stands either way."""
    global _layer_down_until
    messages = list(batches(events))
    if not messages:
        return
    count = sum(len(message["events"]) for _, message in messages)
    if time.monotonic() < _layer_down_until:
        logger.warning("realtime.announce_skipped", extra={"events": count})
        return
    try:
        async_to_sync(_send)(messages)
    except (TimeoutError, OSError, RedisError) as exc:
        _layer_down_until = time.monotonic() + RETRY_AFTER_SECONDS
        logger.error("realtime.announce_failed", extra={"events": count, "error": repr(exc)})
    except Exception:
        # A bug, not an outage: worth a traceback, and no reason to pause announcing.
        logger.exception("realtime.announce_failed", extra={"events": count})


def batches(events: Iterable[dict]) -> Iterator[tuple[str, dict]]:
    """(group, channel-layer message) pairs, each message a batch of one workspace's events."""
    by_group = defaultdict(list)
    for item in events:
        by_group[group_name(item["workspace_id"])].append(item)
    for group, items in by_group.items():
        for start in range(0, len(items), EVENTS_PER_MESSAGE):
            chunk = items[start : start + EVENTS_PER_MESSAGE]
            yield group, {"type": BATCH_MESSAGE_TYPE, "events": chunk}


async def _send(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    async with asyncio.timeout(ANNOUNCE_TIMEOUT_SECONDS):
        # In order: a workspace's events arrive in the order the sweep committed them.
        for group, message in messages:
            await layer.group_send(group, message)
