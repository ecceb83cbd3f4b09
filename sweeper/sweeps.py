"""The two sweeps: chunk loops over the domain's guarded steps, one transaction a chunk, behind
the guards of `sweeper.guards`.

Within a chunk, runtimes going offline, the tasks that fail with them, the agents left idle
and the bookkeeping commit together or not at all; chunks commit one after another, so a mass
outage never holds locks or memory without bound, and each chunk is announced as it commits.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from runtimes import agents
from runtimes import sweeps as runtime_steps
from sweeper import guards, state
from sweeper.config import Rules
from sweeper.results import CHUNK_SIZE, SweepResult
from tasks import steps as task_steps


def sweep_stale_runtimes(*, rules: Rules, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Marks `online` runtimes unseen for longer than the stale threshold (database clock)
    offline, unless the platform could not hear them; then fails the dispatched/running tasks
    of offline runtimes whose work is due (deregistered, or offline past the reconnect grace
    and not held by the brake) and idles their agents. Returns what it changed; each chunk
    commits, and is announced, on its own."""
    hearing = guards.observe(rules)
    braked = guards.brake_engaged(rules, hearing)
    judge_stale = hearing.heard_longer_than(rules.reconnect_grace) and not braked
    result = SweepResult()
    if hearing.heard_longer_than(rules.stale_after):
        while chunk := _stale_runtimes_chunk(rules, judge_stale=judge_stale, limit=chunk_size):
            result.add(chunk)
    # Runtimes that went offline earlier (marked within the grace, deregistered), or whose
    # tasks an earlier chunk had to skip: nothing to announce about them, only their tasks to
    # fail. Walked in id order, each once per sweep: runtimes whose tasks others hold locked
    # keep their flag for the next sweep, and do not stall this one.
    after = UUID(int=0)
    while picked := _due_work_chunk(rules, judge_stale=judge_stale, after=after, limit=chunk_size):
        after, chunk = picked
        result.add(chunk)
    if braked:
        guards.release_brake_when_back(rules)
    state.record_sweep("runtimes")
    return result


def sweep_stale_tasks(*, rules: Rules, chunk_size: int = CHUNK_SIZE) -> SweepResult:
    """Fails tasks `dispatched` longer than the dispatch timeout or `running` longer than the
    running timeout (database clock) with `timeout`, none of it counted while the platform
    could not hear, and idles agents left without work. Returns what it changed; each chunk
    commits, and is announced, on its own."""
    hearing = guards.observe(rules)
    judge = {
        "judge_dispatched": hearing.heard_longer_than(rules.dispatch_timeout),
        "judge_running": hearing.heard_longer_than(rules.running_timeout),
    }
    result = SweepResult()
    while any(judge.values()):
        with transaction.atomic():
            failed = task_steps.fail_stuck_tasks(
                dispatch_timeout=rules.dispatch_timeout,
                running_timeout=rules.running_timeout,
                limit=chunk_size,
                **judge,
            )
            idled = agents.idle_agents_without_work(agent_ids=[t.agent_id for t in failed])
        result.add(SweepResult(tasks_failed=failed, agents_changed=idled))
        if len(failed) < chunk_size:
            break
    state.record_sweep("tasks")
    return result


@transaction.atomic
def _stale_runtimes_chunk(rules: Rules, *, judge_stale: bool, limit: int) -> SweepResult:
    """Up to `limit` stale runtimes go offline, with their due work. Empty once none is left."""
    marked = runtime_steps.mark_stale_offline(stale_after=rules.stale_after, limit=limit)
    chunk = _take_down([runtime.id for runtime in marked], rules, judge_stale=judge_stale)
    chunk.runtimes_marked_offline = marked
    return chunk


@transaction.atomic
def _due_work_chunk(
    rules: Rules, *, judge_stale: bool, after: UUID, limit: int
) -> tuple[UUID, SweepResult] | None:
    """The due work of up to `limit` offline runtimes flagged as maybe holding some, after
    `after` in id order; the last one's id with what changed, or None once none is left."""
    runtime_ids = runtime_steps.offline_with_work_due(
        after=after, limit=limit, grace=rules.reconnect_grace, judge_stale=judge_stale
    )
    if not runtime_ids:
        return None
    return runtime_ids[-1], _take_down(runtime_ids, rules, judge_stale=judge_stale)


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
    )
    idled = agents.idle_agents_without_work(agent_ids=[task.agent_id for task in failed])
    runtime_steps.settle_work_pending(runtime_ids=runtime_ids)
    return SweepResult(tasks_failed=failed, agents_changed=idled)
