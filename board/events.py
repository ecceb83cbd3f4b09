"""The workspace's event sequence, as the read API hands it to clients."""

from __future__ import annotations

from uuid import UUID


def head_seq(workspace_id: UUID) -> int | None:
    """The `seq` of the workspace's newest event; None while events carry no sequence."""
    return None
