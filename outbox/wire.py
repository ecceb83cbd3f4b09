"""The wire format of spec §3: what a member's WebSocket receives, one JSON message an event.

    {"seq": N, "type", "workspace_id", "actor_type", "payload", "at": "<ISO 8601>"}

`event()` builds what a change records (the relay adds `seq`, the database `at`). The relay
and the replay read a stored event back as a frame (`to_frame()`): its message as the JSON text
a socket sends as it is, with the `seq` the socket orders it by."""

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


def frame_columns(alias: str) -> str:
    """A stored event of the table `alias` as its frame's columns: its workspace, its `seq`,
    and its message as JSON text, `at` in ISO 8601 (the session's time zone, UTC)."""
    return (
        f"{alias}.workspace_id, {alias}.seq, json_build_object("
        f"'seq', {alias}.seq, 'type', {alias}.type, 'workspace_id', {alias}.workspace_id,"
        f" 'actor_type', {alias}.actor_type, 'payload', {alias}.payload, 'at', {alias}.at"
        f")::text AS text"
    )


def to_frame(row) -> dict:
    """A stored event (a row of `frame_columns`) as a frame: its message, encoded once by the
    database for every socket that sends it, and the `seq` a socket orders it by."""
    return {"seq": row.seq, "text": row.text}


def frame(message: dict) -> dict:
    """A message built here as a frame (`seq` None unless the message has one)."""
    return {"seq": message.get("seq"), "text": json.dumps(message)}


def message_of(frame_: dict) -> dict:
    """The message a frame sends."""
    return json.loads(frame_["text"])
