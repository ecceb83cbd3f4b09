"""The runtime sweep: runtimes that stopped heartbeating go offline, and take their work down."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import transaction

from runtimes import queries
from runtimes.signals import agents_status_changed, runtimes_went_offline, send_on_commit

if TYPE_CHECKING:
    from tasks.sweeps import FailedTask

logger = logging.getLogger(__name__)

# Rows per transaction. A thousand runtimes (and their few active tasks each) commit in tens of
# milliseconds, so a mass outage of 10,000 runtimes holds no lock for long and no more than a
# chunk of rows in memory, while an ordinary sweep still fits in one chunk.
CHUNK_SIZE = 1000


@dataclass(frozen=True)
class RuntimeChange:
    id: UUID
    workspace_id: UUID


@dataclass(frozen=True)
class AgentChange:
    id: UUID
    workspace_id: UUID
    status: str


@dataclass
class SweepResult:
    runtimes_marked_offline: list[RuntimeChange] = field(default_factory=list)
    tasks_failed: list[FailedTask] = field(default_factory=list)
    agents_changed: list[AgentChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runtimes_marked_offline or self.tasks_failed or self.agents_changed)

    def add(self, other: SweepResult) -> SweepResult:
        self.runtimes_marked_offline += other.runtimes_marked_offline
        self.tasks_failed += other.tasks_failed
        self.agents_changed += other.agents_changed
        return self


def sweep_stale_runtimes(*, stale_after: timedelta, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Marks `online` runtimes unseen for longer than `stale_after` (database clock) offline,
    then fails the dispatched/running tasks of every offline runtime and idles their agents.
    Returns what it changed; each chunk commits, and is announced, on its own."""
    result = SweepResult()
    while (chunk := _sweep_chunk(_mark_stale_offline, stale_after, chunk_size)) is not None:
        result.add(chunk)
    pick_pending = _offline_runtimes_with_work(chunk_size)
    while (chunk := _sweep_chunk(pick_pending)) is not None:
        result.add(chunk)
    if result:
        logger.info(
            "sweep.runtimes",
            extra={
                "runtimes_offline": len(result.runtimes_marked_offline),
                "tasks_failed": len(result.tasks_failed),
                "agents_idle": len(result.agents_changed),
            },
        )
    return result


def _sweep_chunk(pick_runtimes, *args) -> SweepResult | None:
    """One transaction: pick offline runtimes, fail their tasks, settle their `work_pending`.
    None once there is nothing left to pick."""
    from tasks.sweeps import fail_tasks_of_offline_runtimes

    with transaction.atomic():
        marked, runtime_ids = pick_runtimes(*args)
        if not runtime_ids:
            return None
        if marked:
            # Registered first, so that it is sent first: a frontend hears that the runtime
            # went offline before it hears about the tasks and agents that went with it.
            send_on_commit(runtimes_went_offline, sender=RuntimeChange, runtimes=marked)
        chunk = fail_tasks_of_offline_runtimes(runtime_ids=runtime_ids)
        chunk.runtimes_marked_offline = marked
        queries.fetch_all(queries.SETTLE_WORK_PENDING, runtime_ids=runtime_ids)
    return chunk


def _mark_stale_offline(
    stale_after: timedelta, limit: int
) -> tuple[list[RuntimeChange], list[UUID]]:
    rows = queries.fetch_all(queries.MARK_STALE_OFFLINE, stale_after=stale_after, limit=limit)
    marked = [RuntimeChange(id=row[0], workspace_id=row[1]) for row in rows]
    return marked, [change.id for change in marked]


def _offline_runtimes_with_work(limit: int):
    """A picker of offline runtimes with work pending, in id order, each picked once per sweep:
    runtimes whose tasks others hold locked keep their flag for the next sweep, and do not
    stall this one."""
    after = UUID(int=0)

    def pick() -> tuple[list[RuntimeChange], list[UUID]]:
        # Runtimes that went offline some other way (deregistered), or whose tasks an earlier
        # chunk had to skip: nothing to announce about them, only their tasks to fail.
        nonlocal after
        rows = queries.fetch_all(queries.OFFLINE_WITH_WORK_PENDING, after=after, limit=limit)
        if rows:
            after = rows[-1][0]
        return [], [row[0] for row in rows]

    return pick


def idle_agents_without_work(*, agent_ids: list[UUID]) -> list[AgentChange]:
    """Sets `working` agents among `agent_ids` that have no dispatched or running task to
    `idle`, and announces them after commit. Returns the agents it changed."""
    if not agent_ids:
        return []
    ids = sorted(set(agent_ids))
    with transaction.atomic():
        queries.fetch_all(queries.LOCK_WORKING_AGENTS, agent_ids=ids)
        rows = queries.fetch_all(queries.IDLE_AGENTS_WITHOUT_WORK, agent_ids=ids)
        changed = [AgentChange(id=r[0], workspace_id=r[1], status=r[2]) for r in rows]
        if changed:
            send_on_commit(agents_status_changed, sender=AgentChange, agents=changed)
    return changed
