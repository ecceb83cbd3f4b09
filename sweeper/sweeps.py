"""The two sweeps: chunk loops over the domain's guarded steps, one transaction a chunk.

Within a chunk, runtimes going offline, the tasks that fail with them, the agents left idle
and the bookkeeping commit together or not at all; chunks commit one after another, so a mass
outage never holds locks or memory without bound, and each chunk is announced as it commits.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from django.db import transaction

from runtimes import agents
from runtimes import sweeps as runtime_steps
from sweeper.results import CHUNK_SIZE, SweepResult
from tasks import steps as task_steps


def sweep_stale_runtimes(*, stale_after: timedelta, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Marks `online` runtimes unseen for longer than `stale_after` (database clock) offline,
    then fails the dispatched/running tasks of every offline runtime and idles their agents.
    Returns what it changed; each chunk commits, and is announced, on its own."""
    result = SweepResult()
    while chunk := _stale_runtimes_chunk(stale_after=stale_after, limit=chunk_size):
        result.add(chunk)
    # Runtimes that went offline some other way (deregistered), or whose tasks an earlier
    # chunk had to skip: nothing to announce about them, only their tasks to fail. Walked in
    # id order, each once per sweep: runtimes whose tasks others hold locked keep their flag
    # for the next sweep, and do not stall this one.
    after = UUID(int=0)
    while (picked := _pending_work_chunk(after=after, limit=chunk_size)) is not None:
        after, chunk = picked
        result.add(chunk)
    return result


def sweep_stale_tasks(
    *,
    dispatch_timeout: timedelta,
    running_timeout: timedelta,
    chunk_size: int = CHUNK_SIZE,
) -> SweepResult:
    """Fails tasks `dispatched` longer than `dispatch_timeout` or `running` longer than
    `running_timeout` (database clock) with `timeout`, and idles agents left without work.
    Returns what it changed; each chunk commits, and is announced, on its own."""
    result = SweepResult()
    while True:
        with transaction.atomic():
            failed = task_steps.fail_stuck_tasks(
                dispatch_timeout=dispatch_timeout, running_timeout=running_timeout, limit=chunk_size
            )
            idled = agents.idle_agents_without_work(agent_ids=[t.agent_id for t in failed])
        result.add(SweepResult(tasks_failed=failed, agents_changed=idled))
        if len(failed) < chunk_size:
            return result


@transaction.atomic
def _stale_runtimes_chunk(*, stale_after: timedelta, limit: int) -> SweepResult:
    """Up to `limit` stale runtimes go offline, with their work. Empty once none is left."""
    marked = runtime_steps.mark_stale_offline(stale_after=stale_after, limit=limit)
    chunk = _take_down_work([runtime.id for runtime in marked])
    chunk.runtimes_marked_offline = marked
    return chunk


@transaction.atomic
def _pending_work_chunk(*, after: UUID, limit: int) -> tuple[UUID, SweepResult] | None:
    """The work of up to `limit` offline runtimes flagged as maybe holding some, after
    `after` in id order; the last one's id with what changed, or None once none is left."""
    runtime_ids = runtime_steps.offline_with_work_pending(after=after, limit=limit)
    if not runtime_ids:
        return None
    return runtime_ids[-1], _take_down_work(runtime_ids)


def _take_down_work(runtime_ids: list[UUID]) -> SweepResult:
    """Inside the chunk's transaction: fails the offline runtimes' tasks, idles the agents
    left without work and records which runtimes still have work (some task was locked)."""
    if not runtime_ids:
        return SweepResult()
    failed = task_steps.fail_tasks_of_offline_runtimes(runtime_ids=runtime_ids)
    idled = agents.idle_agents_without_work(agent_ids=[task.agent_id for task in failed])
    runtime_steps.settle_work_pending(runtime_ids=runtime_ids)
    return SweepResult(tasks_failed=failed, agents_changed=idled)
