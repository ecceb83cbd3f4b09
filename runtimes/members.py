"""What a workspace's members do to its runtimes from the board."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from common.errors import Conflict, NotFound
from common.signals import send_in_transaction
from common.sql import fetch, fetch_one
from runtimes import queries
from runtimes.changes import RuntimeChange
from runtimes.signals import runtimes_changed


def dismiss(*, workspace_id: UUID, runtime_id: UUID) -> RuntimeChange:
    """Hides an offline runtime of the workspace from the board as gone for good, announced as
    `dismiss`. NotFound outside the workspace; Conflict if it is online or dismissed already."""
    with transaction.atomic():
        changed = fetch(
            queries.DISMISS, into=RuntimeChange, workspace_id=workspace_id, runtime_id=runtime_id
        )
        if changed:
            send_in_transaction(
                runtimes_changed, sender=RuntimeChange, action="dismiss", runtimes=changed
            )
            return changed[0]
    runtime = fetch_one(queries.RUNTIME_STATUS, workspace_id=workspace_id, runtime_id=runtime_id)
    if runtime is None:
        raise NotFound("runtime not found")
    if runtime.status == "online":
        raise Conflict("runtime is online: only an offline runtime can be dismissed")
    raise Conflict("runtime is dismissed already")
