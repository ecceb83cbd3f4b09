"""The wire format of spec §3: what a member's WebSocket receives, one JSON message an event.

    {"seq": N, "type", "workspace_id", "actor_type", "payload", "at": "<ISO 8601>"}

`event()` builds what a change records (the relay adds `seq`, the database `at`); `to_wire()`
turns a stored row back into the message."""

import json
from uuid import UUID

# The event types of spec §3.
EVENT_TYPES = ("daemon:register", "task:failed", "task:queued", "agent:status")


def group_name(workspace_id: UUID | str) -> str:
    """The channel-layer group of a workspace's listeners."""
    return f"workspace.{workspace_id}"


def event(type_: str, workspace_id: UUID | str, payload: dict) -> dict:
    return {
        "type": type_,
        "workspace_id": str(workspace_id),
        "actor_type": "system",
        "payload": payload,
    }


def task_payload(task) -> dict:
    """A failed task (tasks.changes.FailedTask, or any object with its fields) as `task:failed`
    carries it."""
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


def queued_payload(task) -> dict:
    """A task a member queued again (tasks.changes.QueuedTask) as `task:queued` carries it."""
    return {
        "task_id": str(task.id),
        "agent_id": str(task.agent_id),
        "issue_id": str(task.issue_id),
        "runtime_id": str(task.runtime_id),
        "status": "queued",
        "retry_of": str(task.retry_of_id),
        "attempt": task.attempt,
    }


def to_wire(row) -> dict:
    """A stored event (a row with the columns of WIRE_COLUMNS) as its WebSocket message."""
    return {
        "seq": row.seq,
        "type": row.type,
        "workspace_id": str(row.workspace_id),
        "actor_type": row.actor_type,
        "payload": json.loads(row.payload),
        "at": row.at.isoformat(),
    }


# The payload as text, parsed here: what the driver makes of jsonb is the backend's choice.
WIRE_COLUMNS = "seq, type, workspace_id, actor_type, payload::text AS payload, at"
