"""The sweeps, and the collection of long-offline runtimes: chunk loops over the domain's
guarded steps, one transaction a chunk, behind the guards of `sweeper.guards`.

Within a chunk, runtimes going offline, the tasks that fail with them, the agents left idle
and the bookkeeping commit together or not at all; chunks commit one after another, so a mass
outage never holds locks or memory without bound, and each chunk is announced as it commits.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from uuid import UUID

from django.db import transaction

from runtimes import agents
from runtimes import sweeps as runtime_steps
from runtimes.changes import RuntimeChange
from sweeper import guards, state, stats
from sweeper.config import Rules
from sweeper.results import CHUNK_SIZE, SweepResult
from tasks import steps as task_steps
from tasks.steps import StuckRules

# Runtime collection reads this many candidates a run, and deletes this many a transaction:
# a runtime's task history is rewritten with it (its tasks keep all but the runtime), so a
# transaction stays short even for runtimes with thousands of tasks behind them.
GC_SCAN = 500
GC_CHUNK = 20
NEVER = datetime.min.replace(tzinfo=UTC)


def sweep_stale_runtimes(*, rules: Rules, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Marks `online` runtimes unseen for longer than the stale threshold (database clock)
    offline, unless the platform could not hear them; then fails the dispatched/running tasks
    of offline runtimes whose work is due (deregistered, or offline past the reconnect grace
    and not held by the brake) and idles their agents. Returns what it changed; each chunk
    commits, and is announced, on its own."""
    started = time.monotonic()
    hearing = guards.observe(rules)
    braked = guards.brake_engaged(rules, hearing)
    judge_stale = hearing.heard_longer_than(rules.reconnect_grace) and not braked
    result = SweepResult()
    # A chunk that marks fewer than it may is the last: the stale runtimes not taken are held
    # by heartbeats (SKIP LOCKED), and the next chunk would skip them too.
    if hearing.heard_longer_than(rules.stale_after):
        while True:
            chunk = _stale_runtimes_chunk(rules, judge_stale=judge_stale, limit=chunk_size)
            result.add(chunk)
            if len(chunk.runtimes_marked_offline) < chunk_size:
                break
    # Runtimes that went offline earlier (marked within the grace, deregistered), or whose
    # tasks an earlier chunk had to skip: nothing to announce about them, only their tasks to
    # fail. Walked in id order, each once per sweep: runtimes whose tasks others hold locked
    # keep their flag for the next sweep, and do not stall this one.
    after = UUID(int=0)
    while picked := _due_work_chunk(rules, judge_stale=judge_stale, after=after, limit=chunk_size):
        after, chunk, walked = picked
        result.add(chunk)
        if walked < chunk_size:
            break
    if braked:
        guards.release_brake_when_back(rules)
    state.record_sweep("runtimes", seconds=time.monotonic() - started)
    return result


def sweep_stale_tasks(*, rules: Rules, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Fails tasks `dispatched` longer than the dispatch timeout or `running` longer than the
    running timeout (longer than the maximum running time, if their daemon vouches for them)
    with `timeout`, live tasks their daemon no longer lists with `orphaned`, and tasks queued
    longer than the queued TTL with `queued_expired` (database clock; none of the wall-clock
    rules counts time the platform could not hear). Queues the next attempt of what it failed
    while the budget lasts, idles agents left without work. Each chunk commits, and is
    announced, on its own."""
    started = time.monotonic()
    hearing = guards.observe(rules)
    stuck = StuckRules(
        dispatch_timeout=rules.dispatch_timeout,
        running_timeout=rules.running_timeout,
        max_running=rules.max_running,
        orphan_grace=rules.orphan_grace,
        judge_dispatched=hearing.heard_longer_than(rules.dispatch_timeout),
        judge_running=hearing.heard_longer_than(rules.running_timeout),
    )
    result = _until_short(partial(_stuck_chunk, stuck, rules, limit=chunk_size), chunk_size)
    if hearing.heard_longer_than(rules.queued_ttl):
        expire = partial(_expired_chunk, rules, limit=chunk_size)
        result.add(_until_short(expire, chunk_size))
    state.record_sweep("tasks", seconds=time.monotonic() - started)
    return result


def collect_offline_runtimes(
    *, rules: Rules, scan: int = GC_SCAN, chunk_size: int = GC_CHUNK
) -> list[RuntimeChange]:
    """Deletes runtimes offline longer than `gc_after` with no agent bound and no queued or
    live task, their tasks' history kept; announced as `runtime_gc`. Reads at most `scan`
    candidates a run, from where the last run stopped (the cursor wraps at the end), and
    deletes them `chunk_size` a transaction."""
    current = state.read()
    candidates = runtime_steps.collection_candidates(
        gc_after=rules.gc_after,
        after_at=current.gc_after_offline_at or NEVER,
        after_id=current.gc_after_id or UUID(int=0),
        limit=scan,
    )
    collected = []
    for start in range(0, len(candidates), chunk_size):
        ids = [row.id for row in candidates[start : start + chunk_size]]
        collected += _collect_chunk(ids, gc_after=rules.gc_after)
    end = candidates[-1] if len(candidates) == scan else None
    state.move_gc_cursor(after_at=end and end.offline_at, after_id=end and end.id)
    return collected


def _until_short(run_chunk, chunk_size: int) -> SweepResult:
    """Chunk after chunk until one fails fewer than `chunk_size` tasks."""
    result = SweepResult()
    while True:
        chunk = run_chunk()
        result.add(chunk)
        if len(chunk.tasks_failed) < chunk_size:
            return result


@transaction.atomic
def _stuck_chunk(stuck: StuckRules, rules: Rules, *, limit: int) -> SweepResult:
    failed = task_steps.fail_stuck_tasks(rules=stuck, limit=limit, max_attempts=rules.max_attempts)
    idled = agents.idle_agents_without_work(agent_ids=[t.agent_id for t in failed])
    return _counted(SweepResult(tasks_failed=failed, agents_changed=idled))


@transaction.atomic
def _expired_chunk(rules: Rules, *, limit: int) -> SweepResult:
    expired = task_steps.expire_queued_tasks(queued_ttl=rules.queued_ttl, limit=limit)
    return _counted(SweepResult(tasks_failed=expired))


def _counted(chunk: SweepResult) -> SweepResult:
    """In the chunk's transaction: what it changed is counted iff it commits."""
    stats.count_changes(chunk)
    return chunk


@transaction.atomic
def _collect_chunk(runtime_ids: list[UUID], *, gc_after) -> list[RuntimeChange]:
    locked = runtime_steps.lock_collectable(runtime_ids=runtime_ids, gc_after=gc_after)
    if not locked:
        return []
    ids = [runtime.id for runtime in locked]
    task_steps.detach_runtime_history(runtime_ids=ids)
    return runtime_steps.delete_runtimes(runtime_ids=ids)


@transaction.atomic
def _stale_runtimes_chunk(rules: Rules, *, judge_stale: bool, limit: int) -> SweepResult:
    """Up to `limit` stale runtimes go offline, with their due work. Empty once none is left."""
    marked = runtime_steps.mark_stale_offline(stale_after=rules.stale_after, limit=limit)
    chunk = _take_down([runtime.id for runtime in marked], rules, judge_stale=judge_stale)
    chunk.runtimes_marked_offline = marked
    return _counted(chunk)


@transaction.atomic
def _due_work_chunk(
    rules: Rules, *, judge_stale: bool, after: UUID, limit: int
) -> tuple[UUID, SweepResult, int] | None:
    """The due work of up to `limit` offline runtimes flagged as maybe holding some, after
    `after` in id order: the last one's id, what changed and how many were walked; None once
    none is left."""
    runtime_ids = runtime_steps.offline_with_work_due(
        after=after, limit=limit, grace=rules.reconnect_grace, judge_stale=judge_stale
    )
    if not runtime_ids:
        return None
    chunk = _counted(_take_down(runtime_ids, rules, judge_stale=judge_stale))
    return runtime_ids[-1], chunk, len(runtime_ids)


def _take_down(runtime_ids: list[UUID], rules: Rules, *, judge_stale: bool) -> SweepResult:
    """Inside the chunk's transaction: fails the due tasks of the offline runtimes, idles the
    agents left without work and records which runtimes still have work (some task was
    locked, or is not due yet)."""
    if not runtime_ids:
        return SweepResult()
    failed = task_steps.fail_tasks_of_offline_runtimes(
        runtime_ids=runtime_ids,
        stale_after=rules.stale_after,
        grace=rules.reconnect_grace,
        judge_stale=judge_stale,
        max_attempts=rules.max_attempts,
    )
    idled = agents.idle_agents_without_work(agent_ids=[task.agent_id for task in failed])
    runtime_steps.settle_work_pending(runtime_ids=runtime_ids)
    return SweepResult(tasks_failed=failed, agents_changed=idled)
