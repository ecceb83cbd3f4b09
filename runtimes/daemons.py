"""What a daemon does to its runtimes: register them, keep them alive, take them down.

Every write is one guarded statement on the database's clock (see `queries`), and every
change is announced through `runtimes_changed` in its transaction, for the rows that changed
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from common.errors import Conflict, NotAuthenticated, NotFound
from common.signals import send_in_transaction
from common.sql import execute, fetch, fetch_one
from runtimes import queries
from runtimes.changes import RuntimeChange
from runtimes.signals import runtimes_changed


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    provider: str
    version: str


@dataclass(frozen=True)
class RegisteredRuntime:
    id: UUID
    workspace_id: UUID
    name: str
    provider: str
    status: str


def register(
    *,
    workspace_id: UUID,
    daemon_id: str,
    device_name: str,
    runtimes: list[RuntimeSpec],
    max_runtimes: int,
) -> list[RegisteredRuntime]:
    """Upserts one online runtime per provider on (workspace, daemon_id, provider), seen now.
    Returns them in the order given; announces them all as `register`. Conflict, changing
    nothing, if the workspace would have more than `max_runtimes`."""
    registered: dict[int, RegisteredRuntime] = {}
    with transaction.atomic():
        _check_quota(workspace_id, daemon_id, [spec.provider for spec in runtimes], max_runtimes)
        # Upserting in provider order keeps two registers of one daemon from deadlocking.
        for i in sorted(range(len(runtimes)), key=lambda i: runtimes[i].provider):
            registered[i] = fetch_one(
                queries.REGISTER_RUNTIME,
                into=RegisteredRuntime,
                workspace_id=workspace_id,
                daemon_id=daemon_id,
                device_name=device_name,
                name=runtimes[i].name,
                provider=runtimes[i].provider,
                version=runtimes[i].version,
            )
        in_order = [registered[i] for i in range(len(runtimes))]
        changes = [RuntimeChange(id=r.id, workspace_id=r.workspace_id) for r in in_order]
        _announce("register", changes)
    return in_order


def _check_quota(workspace_id: UUID, daemon_id: str, providers: list[str], limit: int) -> None:
    if fetch_one(queries.LOCK_WORKSPACE_FOR_REGISTER, workspace_id=workspace_id) is None:
        raise NotFound("workspace not found")
    count = fetch_one(
        queries.COUNT_WORKSPACE_RUNTIMES,
        workspace_id=workspace_id,
        daemon_id=daemon_id,
        providers=providers,
    )
    new = len(providers) - count.registered
    if count.total + new > limit:
        raise Conflict(
            f"the workspace has {count.total} runtimes and may have {limit}:"
            f" registering {new} more would pass its limit"
        )


@dataclass(frozen=True)
class Heartbeat:
    came_back: bool  # it was offline: announced as `online`
    contradicted: bool  # the sweeper had marked it offline, within the reconnect grace


def heartbeat(
    *,
    token_hash: str,
    runtime_id: UUID,
    reconnect_grace: timedelta,
    leases: list[UUID] | None = None,
) -> Heartbeat:
    """Sets the runtime online and seen now, if the token is live (NotAuthenticated otherwise)
    and the runtime is in its workspace (NotFound otherwise). A comeback is announced. With
    `leases`, the tasks the daemon runs: its live tasks listed are vouched for, the others
    noted as no longer listed (see queries._heartbeat)."""

    params = {"token_hash": token_hash, "runtime_id": runtime_id, "grace": reconnect_grace}
    # Online, as nearly always: one statement in autocommit, and nothing to announce.
    beat = queries.HEARTBEAT_ONLINE.fetch_one(**params, leases=leases)
    if beat is None:
        raise NotAuthenticated("missing, invalid, expired or revoked token")
    if beat.runtime_id is not None:
        return Heartbeat(came_back=False, contradicted=False)

    # Not online, or not found: the statement and, for a comeback, its event, in one
    # transaction. The row lock it takes is held only until that commits, and the sweep skips a
    # locked runtime.
    def beat_once():
        beat = queries.HEARTBEAT.fetch_one(**params, leases=leases)
        if beat is None:
            raise NotAuthenticated("missing, invalid, expired or revoked token")
        if beat.runtime_id is None:
            raise NotFound("runtime not found")
        came_back = beat.old_status != "online"
        if came_back:
            comeback = RuntimeChange(id=beat.runtime_id, workspace_id=beat.workspace_id)
            _announce("online", [comeback])
        return Heartbeat(came_back=came_back, contradicted=beat.contradicted)

    return queries.HEARTBEAT.in_transaction(beat_once)


def deregister(*, workspace_id: UUID, runtime_ids: list[UUID]) -> list[RuntimeChange]:
    """Sets the runtimes offline, as deregistered: their active tasks fail on the next sweep.
    One id unknown in the workspace rejects the whole call (NotFound) and changes nothing.
    Returns and announces the runtimes that were online."""
    ids = sorted(set(runtime_ids))
    with transaction.atomic():
        locked = fetch(queries.LOCK_WORKSPACE_RUNTIMES, workspace_id=workspace_id, runtime_ids=ids)
        if len(locked) != len(ids):
            missing = sorted(set(ids) - {row.id for row in locked})
            raise NotFound(f"runtime not found: {missing[0]}")
        execute(queries.DEREGISTER_RUNTIMES, workspace_id=workspace_id, runtime_ids=ids)
        changed = [
            RuntimeChange(id=row.id, workspace_id=row.workspace_id)
            for row in locked
            if row.status == "online"
        ]
        _announce("deregister", changed)
    return changed


def lock_for_claim(*, workspace_id: UUID, runtime_id: UUID) -> None:
    """Within the caller's transaction: holds the runtime so that no sweep marks it offline
    before the claim commits. Raises NotFound, or Conflict for an offline runtime (whose
    claimed work the next sweep would fail at once)."""
    runtime = fetch_one(
        queries.LOCK_RUNTIME_FOR_CLAIM, workspace_id=workspace_id, runtime_id=runtime_id
    )
    if runtime is None:
        raise NotFound("runtime not found")
    if runtime.status != "online":
        raise Conflict("runtime is offline: send a heartbeat first")


def _announce(action: str, changes: list[RuntimeChange]) -> None:
    if changes:
        send_in_transaction(runtimes_changed, sender=RuntimeChange, action=action, runtimes=changes)
