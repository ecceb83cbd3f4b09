"""Sweep benchmark: idle sweeps as history grows; a mass outage against naive and raw SQL.

`DATABASE_URL=... python -m bench.sweep [--quick] [--keep]`. Works only in its own database,
`<name>_bench` on that server, which it creates, migrates, fills and then drops."""

import statistics
import sys
from contextlib import nullcontext
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models.functions import Now

from bench.common import VACUUM, World, arguments, django_database, fill, fill_tasks, timed
from common.sql import fetch
from runtimes.signals import agents_status_changed, runtimes_went_offline
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.signals import tasks_failed

# Thresholds are parameters of the sweeps; generous ones keep "fresh" rows fresh for the whole
# run (the fill alone takes a minute), while stale rows are aged far past them.
STALE_AFTER = timedelta(hours=1)
DISPATCH_TIMEOUT = timedelta(hours=1)
RUNNING_TIMEOUT = timedelta(days=1)
ACTIVE = ("dispatched", "running")


def world(runtimes: int) -> World:
    """Runtime k has one agent, and 99 neighbours in its workspace. k % 20 = 19 died days ago
    (offline, only history), k % 100 = 50 was never seen, k % 10 = 7 is what the outage kills."""
    dead = "mod(k, 20) = 19"
    return World(
        workspace=f"mod(k, {max(1, runtimes // 100)})",
        status=f"CASE WHEN {dead} THEN 'offline' ELSE 'online' END",
        last_seen_at=f"CASE WHEN {dead} THEN now() - interval '2 days' WHEN mod(k, 100) = 50"
        " THEN NULL ELSE now() - mod(k, 600) * interval '1 second' END",
        offline_at=f"CASE WHEN {dead} THEN now() - interval '2 days' END",
    )


# Task i runs on runtime k = i % R in state bucket b = (i / R + k) % 10: at full size each live
# runtime has a dispatched (b = 0), a running (1) and a queued task (2); the rest is history.
TASKS = """
SELECT k, st AS status, at AS created_at, CASE WHEN st <> 'queued' THEN at END AS dispatched_at,
       CASE WHEN st NOT IN ('queued', 'dispatched') THEN at END AS started_at,
       CASE WHEN done THEN at + interval '5 minutes' END AS completed_at,
       CASE WHEN st = 'failed' THEN 'agent crashed' ELSE '' END AS error,
       CASE WHEN st = 'failed' THEN 'agent_error' ELSE '' END AS failure_reason
FROM (SELECT i, i %% %(r)s AS k, (i / %(r)s + i %% %(r)s) %% 10 AS b
      FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS s,
LATERAL (SELECT k %% 20 = 19 OR b > 2 AS done) AS d,
LATERAL (SELECT CASE WHEN done THEN now() - (i %% 2592000 + 3600) * interval '1 second'
                     ELSE now() - (i %% 600) * interval '1 second' END AS at,
                CASE WHEN done THEN (CASE WHEN b = 9 THEN 'failed' ELSE 'completed' END)
                     ELSE (ARRAY['dispatched', 'running', 'queued'])[b + 1] END AS st) AS t
"""

WORKING = """
UPDATE agent SET status = 'working' WHERE status = 'idle'
  AND id IN (SELECT agent_id FROM agent_task WHERE status IN ('dispatched', 'running'))
"""

# Ages the doomed runtimes, and notes every row a variant may change so RESET can put it back.
OUTAGE = """
UPDATE agent_runtime SET last_seen_at = now() - interval '2 hours'
WHERE status = 'online' AND daemon_id ~ '7$';
CREATE TABLE bench_runtimes AS SELECT id FROM agent_runtime
WHERE status = 'online' AND last_seen_at < now() - %(stale)s;
CREATE TABLE bench_tasks AS SELECT t.id, t.status, t.agent_id FROM agent_task AS t
JOIN bench_runtimes AS r ON r.id = t.runtime_id WHERE t.status IN ('dispatched', 'running');
"""

RESET = """
UPDATE agent_runtime AS r SET status = 'online', offline_at = NULL
FROM bench_runtimes AS b WHERE r.id = b.id;
UPDATE agent_task AS t SET status = b.status, completed_at = NULL, error = '', failure_reason = ''
FROM bench_tasks AS b WHERE t.id = b.id;
UPDATE agent SET status = 'working' WHERE id IN (SELECT agent_id FROM bench_tasks);
"""

# The raw baseline: the whole outage in one statement, no chunks, no locks beyond the UPDATEs,
# returning the same columns the real sweep needs for its announcements.
RAW_SWEEP = """
WITH gone AS (
    UPDATE agent_runtime SET status = 'offline', offline_at = now()
    WHERE status = 'online' AND last_seen_at < now() - %(stale)s RETURNING id, workspace_id
), failed AS (
    UPDATE agent_task AS t SET status = 'failed', error = 'runtime went offline',
        failure_reason = 'runtime_offline', completed_at = now()
    FROM agent_runtime AS r WHERE r.id = t.runtime_id AND t.status IN ('dispatched', 'running')
      AND (r.status = 'offline' OR r.id IN (SELECT id FROM gone))
    RETURNING t.id, t.agent_id, t.issue_id, t.runtime_id, r.workspace_id, failure_reason, error
), idled AS (
    UPDATE agent AS a SET status = 'idle'
    WHERE a.status = 'working' AND a.id IN (SELECT agent_id FROM failed) AND NOT EXISTS (
        SELECT 1 FROM agent_task AS x WHERE x.agent_id = a.id
        AND x.status IN ('dispatched', 'running') AND x.id NOT IN (SELECT id FROM failed))
    RETURNING a.id, a.workspace_id, a.status
)
SELECT 'runtimes' AS kind, id, workspace_id, NULL::uuid AS agent_id, NULL::uuid AS issue_id,
       NULL::uuid AS runtime_id, NULL AS failure_reason, NULL AS error FROM gone
UNION ALL
SELECT 'tasks', id, workspace_id, agent_id, issue_id, runtime_id, failure_reason, error FROM failed
UNION ALL SELECT 'agents', id, workspace_id, NULL, NULL, NULL, status, NULL FROM idled
"""


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--runtimes", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--small-tasks", type=int, default=10_000, help="first idle point")
    parser.add_argument("--runs", type=int, default=15, help="idle sweeps per median")
    parser.add_argument("--repeat", type=int, default=3, help="real and raw outage runs")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(runtimes=2000, tasks=20000, small_tasks=2000, runs=3, repeat=1)
    return args


def idle_sweeps(runs: int) -> list[float]:
    """Median ms of each sweep with nothing to do; the first run only warms the cache."""
    runtimes = partial(sweep_stale_runtimes, rules=Rules(stale_after=STALE_AFTER))
    tasks = partial(
        sweep_stale_tasks,
        rules=Rules(dispatch_timeout=DISPATCH_TIMEOUT, running_timeout=RUNNING_TIMEOUT),
    )
    medians = []
    for sweep in (runtimes, tasks):
        results = [timed(sweep) for _ in range(runs + 1)][1:]
        assert not any(changed for _, changed in results), "an idle sweep changed something"
        medians.append(statistics.median(ms for ms, _ in results))
    return medians


def count_announced() -> dict[str, int]:
    """Replaces every receiver of the domain signals (so no Channels) with a row counter."""
    counts = {"runtimes": 0, "tasks": 0, "agents": 0}
    signals = [runtimes_went_offline, tasks_failed, agents_status_changed]
    for key, signal in zip(counts, signals, strict=True):
        signal.receivers.clear()
        signal.sender_receivers_cache.clear()

        def receiver(sender, _key=key, **kwargs):
            counts[_key] += len(kwargs[_key])

        signal.connect(receiver, weak=False)
    return counts


def real_sweep() -> tuple[int, int, int]:
    result = sweep_stale_runtimes(rules=Rules(stale_after=STALE_AFTER))
    changed = (result.runtimes_marked_offline, result.tasks_failed, result.agents_changed)
    return tuple(len(rows) for rows in changed)


def naive_sweep(*, atomic: bool) -> tuple[int, int, int]:
    """What the ORM invites: load, change in Python, save() each, one query per check."""
    from runtimes.models import Agent, AgentRuntime  # models need django.setup() first
    from tasks.models import AgentTask

    with transaction.atomic() if atomic else nullcontext():
        stale = AgentRuntime.objects.filter(status="online", last_seen_at__lt=Now() - STALE_AFTER)
        runtimes = list(stale)
        for runtime in runtimes:
            runtime.status, runtime.offline_at = "offline", Now()
            runtime.save()
        tasks = list(AgentTask.objects.filter(status__in=ACTIVE, runtime__status="offline"))
        for task in tasks:
            task.status, task.completed_at = "failed", Now()
            task.error, task.failure_reason = "runtime went offline", "runtime_offline"
            task.save()
        idled = 0
        for agent in Agent.objects.filter(id__in={task.agent_id for task in tasks}):
            busy = AgentTask.objects.filter(agent=agent, status__in=ACTIVE).exists()
            if agent.status == "working" and not busy:
                agent.status = "idle"
                agent.save()
                idled += 1
    return len(runtimes), len(tasks), idled


def raw_sweep() -> tuple[int, int, int]:
    with transaction.atomic():
        kinds = [row.kind for row in fetch(RAW_SWEEP, stale=STALE_AFTER)]
    return kinds.count("runtimes"), kinds.count("tasks"), kinds.count("agents")


VARIANTS = {
    "real": ("real sweep_stale_runtimes (chunked)", real_sweep),
    "raw": ("raw: one UPDATE ... RETURNING", raw_sweep),
    "naive": ("naive ORM, one transaction", lambda: naive_sweep(atomic=True)),
    "naive_auto": ("naive ORM, autocommit (Django default)", lambda: naive_sweep(atomic=False)),
}


def outage(repeat: int) -> dict[str, tuple[float, tuple[int, int, int]]]:
    """Each variant from the same rows and fresh statistics; real and raw `repeat` times."""
    fetch(OUTAGE, stale=STALE_AFTER)
    announced = count_announced()
    runs: dict[str, list] = {name: [] for name in VARIANTS}
    for name in ["naive_auto", "naive"] + ["raw", "real"] * repeat:
        fetch(RESET)
        fetch(VACUUM)  # fresh statistics and clean pages for every variant
        announced.update(dict.fromkeys(announced, 0))
        runs[name].append(timed(VARIANTS[name][1]))
    changed = {rows for results in runs.values() for _, rows in results}
    assert len(changed) == 1, f"the variants changed different rows: {runs}"
    assert tuple(announced.values()) in changed, f"announced {announced}, changed {changed}"
    return {name: (statistics.median(ms for ms, _ in r), r[0][1]) for name, r in runs.items()}


def print_table(idle: list[tuple[str, list[float]]], out: dict) -> None:
    print(f"\n{'idle sweep, median ms':<42}{'runtimes':>10}{'tasks':>10}{'both':>10}")
    for label, (runtimes_ms, tasks_ms) in idle:
        print(f"{label:<42}{runtimes_ms:>10.2f}{tasks_ms:>10.2f}{runtimes_ms + tasks_ms:>10.2f}")
    print(f"\n{'mass outage':<42}{'ms':>10}  rows changed (runtimes, tasks, agents)")
    for name, (label, _) in VARIANTS.items():
        print(f"{label:<42}{out[name][0]:>10.1f}  {out[name][1]}")
    both, real = [sum(ms) for _, ms in idle], out["real"][0]
    print(f"\nslowest idle sweep:      {max(both):.2f} ms (target < 10 ms)")
    print(f"idle, full / small size: {both[1] / both[0]:.2f}x (target <= 1x)")
    for name in ("naive", "naive_auto"):
        print(f"real vs {name + ':':<16}{out[name][0] / real:.1f}x faster (target >= 50x)")
    print(f"real / raw:              {real / out['raw'][0]:.2f}x (target <= 1.5x)")


def fill_more_tasks(lo: int, hi: int, runtimes: int) -> None:
    fill_tasks(TASKS, lo=lo, hi=hi, r=runtimes)
    fetch(WORKING)
    fetch(VACUUM)


def run(args) -> None:
    print(f"filling {args.runtimes:,} runtimes ...", file=sys.stderr)
    fill(world(args.runtimes), 0, args.runtimes)
    fill_more_tasks(0, args.small_tasks, args.runtimes)
    idle = [(f"{args.small_tasks:,} tasks", idle_sweeps(args.runs))]
    print(f"filling {args.tasks:,} tasks ...", file=sys.stderr)
    fill_more_tasks(args.small_tasks, args.tasks, args.runtimes)
    idle.append((f"{args.tasks:,} tasks", idle_sweeps(args.runs)))
    print("mass outage ...", file=sys.stderr)
    out = outage(args.repeat)
    fetch("ANALYZE")  # as autovacuum would, once 10% of the rows changed
    idle.append((f"{args.tasks:,} tasks, 10% more runtimes offline", idle_sweeps(args.runs)))
    print_table(idle, out)


def main() -> None:
    args = parse_args()
    # DEBUG off (django_database): a query log would tax the naive baseline most.
    with django_database("_bench", keep=args.keep):
        run(args)


if __name__ == "__main__":
    main()
