"""What a daemon does to its runtimes: register them, keep them alive, take them down.

Every write is one guarded statement on the database's clock (see `queries`), and every
change is announced through `runtimes_changed` after commit, for the rows that changed only.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from runtimes import queries
from runtimes.signals import runtimes_changed, send_on_commit
from runtimes.sweeps import RuntimeChange


class NotFound(Exception):
    """No such row in the caller's workspace (another workspace's rows look the same)."""


class Conflict(Exception):
    """The row is in a state that does not allow the move."""


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    provider: str
    version: str


@dataclass(frozen=True)
class RegisteredRuntime:
    id: UUID
    name: str
    provider: str
    status: str


def register(
    *, workspace_id: UUID, daemon_id: str, device_name: str, runtimes: list[RuntimeSpec]
) -> list[RegisteredRuntime]:
    """Upserts one online runtime per provider on (workspace, daemon_id, provider), seen now.
    Returns them in the order given; announces them all as `register`."""
    # Upserting in provider order keeps two registers of one daemon from deadlocking.
    order = sorted(range(len(runtimes)), key=lambda i: runtimes[i].provider)
    rows = [None] * len(runtimes)
    with transaction.atomic():
        for i in order:
            spec = runtimes[i]
            (rows[i],) = queries.fetch_all(
                queries.REGISTER_RUNTIME,
                workspace_id=workspace_id,
                daemon_id=daemon_id,
                device_name=device_name,
                name=spec.name,
                provider=spec.provider,
                version=spec.version,
            )
        _announce("register", [RuntimeChange(id=row[0], workspace_id=row[1]) for row in rows])
    return [RegisteredRuntime(id=r[0], name=r[2], provider=r[3], status=r[4]) for r in rows]


def heartbeat(*, token_hash: str, runtime_id: UUID) -> bool:
    """Sets the runtime online and seen now, if the token is live and the runtime is in its
    workspace (NotFound otherwise). Returns whether it was offline, in which case the comeback
    is announced as `online`."""
    # A single statement, so no explicit transaction: the row lock it takes is held only for
    # the statement (or the caller's transaction), and the sweep skips a locked runtime.
    rows = queries.HEARTBEAT.fetch_all(token_hash=token_hash, runtime_id=runtime_id)
    if not rows:
        raise NotFound("runtime not found")
    runtime_id, workspace_id, old_status = rows[0]
    came_back = old_status != "online"
    if came_back:
        _announce("online", [RuntimeChange(id=runtime_id, workspace_id=workspace_id)])
    return came_back


def deregister(*, workspace_id: UUID, runtime_ids: list[UUID]) -> list[RuntimeChange]:
    """Sets the runtimes offline; their active tasks fail on the next sweep. One id unknown
    in the workspace rejects the whole call (NotFound) and changes nothing. Returns and
    announces the runtimes that were online."""
    ids = sorted(set(runtime_ids))
    with transaction.atomic():
        locked = queries.fetch_all(
            queries.LOCK_WORKSPACE_RUNTIMES, workspace_id=workspace_id, runtime_ids=ids
        )
        if len(locked) != len(ids):
            missing = sorted(set(ids) - {row[0] for row in locked})
            raise NotFound(f"runtime not found: {missing[0]}")
        rows = queries.fetch_all(
            queries.DEREGISTER_RUNTIMES, workspace_id=workspace_id, runtime_ids=ids
        )
        changed = [RuntimeChange(id=row[0], workspace_id=row[1]) for row in rows]
        _announce("deregister", changed)
    return changed


def lock_for_claim(*, workspace_id: UUID, runtime_id: UUID) -> None:
    """Within the caller's transaction: holds the runtime so that no sweep marks it offline
    before the claim commits. Raises NotFound, or Conflict for an offline runtime (whose
    claimed work the next sweep would fail at once)."""
    rows = queries.fetch_all(
        queries.LOCK_RUNTIME_FOR_CLAIM, workspace_id=workspace_id, runtime_id=runtime_id
    )
    if not rows:
        raise NotFound("runtime not found")
    if rows[0][0] != "online":
        raise Conflict("runtime is offline: send a heartbeat first")


def _announce(action: str, changes: list[RuntimeChange]) -> None:
    if changes:
        send_on_commit(runtimes_changed, sender=RuntimeChange, action=action, runtimes=changes)
