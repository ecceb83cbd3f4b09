"""Sweep benchmark: idle sweeps as history grows; a mass outage against naive and raw SQL, and
with its events recorded in the outbox against without.

`DATABASE_URL=... python -m bench.sweep [--quick] [--keep]`. Works only in its own database,
`<name>_bench` on that server, which it creates, migrates, fills and then drops."""

import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models.functions import Now

from bench.common import (
    VACUUM,
    arguments,
    django_database,
    fill,
    fill_tasks,
    relay_held_elsewhere,
    timed,
)
from bench.sweep_worlds import CLEAN_UP, OUTAGE, RAW_SWEEP, RESET, WORKING, Spec, worlds
from common.sql import fetch
from realtime import receivers
from runtimes.signals import agents_status_changed, runtimes_went_offline
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.signals import tasks_failed

# Thresholds are parameters of the sweeps; generous ones keep "fresh" rows fresh for the whole
# run (the fill alone takes a minute), while stale rows are aged far past them. No reconnect
# grace: the outage's tasks fail in the same sweep, as in the raw baseline.
STALE_AFTER = timedelta(hours=1)
RUNTIME_RULES = Rules(stale_after=STALE_AFTER)
TASK_RULES = Rules(dispatch_timeout=timedelta(hours=1), running_timeout=timedelta(days=1))
ACTIVE = ("dispatched", "running")
EMPTY = "TRUNCATE workspace, agent_runtime, agent, agent_task, sweeper_state CASCADE"


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--runtimes", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--small-tasks", type=int, default=10_000, help="first idle point")
    parser.add_argument("--runs", type=int, default=15, help="idle sweeps per median")
    parser.add_argument("--repeat", type=int, default=3, help="real and raw outage runs")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--worlds", default="dense,sparse,graveyard", help="which worlds (bench/sweep_worlds.py)"
    )
    args = parser.parse_args()
    if args.quick:
        vars(args).update(runtimes=2000, tasks=20000, small_tasks=2000, runs=3, repeat=1)
    return args


def idle_sweeps(runs: int) -> list[float]:
    """Median ms of each sweep with nothing to do; the first run only warms the cache."""
    runtimes = partial(sweep_stale_runtimes, rules=RUNTIME_RULES)
    tasks = partial(sweep_stale_tasks, rules=TASK_RULES)
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
    result = sweep_stale_runtimes(rules=RUNTIME_RULES)
    changed = (result.runtimes_marked_offline, result.tasks_failed, result.agents_changed)
    return tuple(len(rows) for rows in changed)


@contextmanager
def recording() -> Iterator[None]:
    """The outbox's receivers connected besides the counters: each chunk records its events."""
    pairs = [
        (runtimes_went_offline, receivers.on_runtimes_went_offline),
        (tasks_failed, receivers.on_tasks_failed),
        (agents_status_changed, receivers.on_agents_status_changed),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, weak=False)
    try:
        yield
    finally:
        for signal, receiver in pairs:
            signal.disconnect(receiver)
        fetch("TRUNCATE outbox_event, outbox_head")


def outbox_sweep(*, relay_on_commit: bool) -> tuple[int, int, int]:
    # Without the relay (its lock held elsewhere), only the recording is timed.
    with recording(), nullcontext() if relay_on_commit else relay_held_elsewhere():
        return real_sweep()


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
    "outbox": ("real, events into the outbox", partial(outbox_sweep, relay_on_commit=False)),
    "relayed": ("real, outbox + relay after commit", partial(outbox_sweep, relay_on_commit=True)),
    "raw": ("raw: one UPDATE ... RETURNING", raw_sweep),
    "naive": ("naive ORM, one transaction", lambda: naive_sweep(atomic=True)),
    "naive_auto": ("naive ORM, autocommit (Django default)", lambda: naive_sweep(atomic=False)),
}


def outage(spec: Spec, repeat: int) -> dict[str, tuple[float, tuple[int, int, int]]]:
    """Each variant from the same rows and fresh statistics; real and raw `repeat` times."""
    fetch(OUTAGE.format(doomed=spec.doomed), stale=STALE_AFTER)
    announced = count_announced()
    runs: dict[str, list] = {name: [] for name in VARIANTS}
    for name in ["naive_auto", "naive"] + ["raw", "real", "outbox", "relayed"] * repeat:
        fetch(RESET)
        fetch(VACUUM)  # fresh statistics and clean pages for every variant
        announced.update(dict.fromkeys(announced, 0))
        runs[name].append(timed(VARIANTS[name][1]))
    changed = {rows for results in runs.values() for _, rows in results}
    assert len(changed) == 1, f"the variants changed different rows: {runs}"
    assert tuple(announced.values()) in changed, f"announced {announced}, changed {changed}"
    fetch(RESET)
    fetch(CLEAN_UP)
    return {name: (statistics.median(ms for ms, _ in r), r[0][1]) for name, r in runs.items()}


def print_table(name: str, idle: list[tuple[str, list[float]]], out: dict) -> None:
    print(f"\n{'world: ' + name + ', idle sweep, median ms':<42}{'runtimes':>10}{'tasks':>10}"
          f"{'both':>10}")  # fmt: skip
    for label, (runtimes_ms, tasks_ms) in idle:
        print(f"{label:<42}{runtimes_ms:>10.2f}{tasks_ms:>10.2f}{runtimes_ms + tasks_ms:>10.2f}")
    print(f"\n{'mass outage':<42}{'ms':>10}  rows changed (runtimes, tasks, agents)")
    for variant, (label, _) in VARIANTS.items():
        print(f"{label:<42}{out[variant][0]:>10.1f}  {out[variant][1]}")
    both, real = [sum(ms) for _, ms in idle], out["real"][0]
    print(f"\nslowest idle sweep:      {max(both):.2f} ms (target < 10 ms)")
    print(f"idle, full / small size: {both[1] / both[0]:.2f}x (target <= 1x)")
    for variant in ("naive", "naive_auto"):
        print(f"real vs {variant + ':':<16}{out[variant][0] / real:.1f}x faster (target >= 50x)")
    print(f"real / raw:              {real / out['raw'][0]:.2f}x (target <= 1.5x)")
    print(f"outbox / real:           {out['outbox'][0] / real:.2f}x (target <= 1.3x)")
    print(f"relayed / real:          {out['relayed'][0] / real:.2f}x")


def fill_more_tasks(spec: Spec, lo: int, hi: int, runtimes: int) -> None:
    fill_tasks(spec.tasks, lo=lo, hi=hi, r=runtimes)
    fetch(WORKING)
    fetch(VACUUM)


def run(name: str, spec: Spec, args) -> None:
    fetch(EMPTY)
    print(f"{name}: filling {args.runtimes:,} runtimes ...", file=sys.stderr)
    fill(spec.world, 0, args.runtimes)
    fill_more_tasks(spec, 0, args.small_tasks, args.runtimes)
    idle = [(f"{args.small_tasks:,} tasks", idle_sweeps(args.runs))]
    print(f"{name}: filling {args.tasks:,} tasks ...", file=sys.stderr)
    fill_more_tasks(spec, args.small_tasks, args.tasks, args.runtimes)
    idle.append((f"{args.tasks:,} tasks", idle_sweeps(args.runs)))
    print(f"{name}: mass outage ...", file=sys.stderr)
    out = outage(spec, args.repeat)
    fetch("ANALYZE")  # as autovacuum would, once 10% of the rows changed
    idle.append((f"{args.tasks:,} tasks, after the outage", idle_sweeps(args.runs)))
    print_table(name, idle, out)


def main() -> None:
    args = parse_args()
    # DEBUG off (django_database): a query log would tax the naive baseline most.
    with django_database("_bench", keep=args.keep):
        specs = worlds(args.runtimes)
        for name in args.worlds.split(","):
            run(name, specs[name], args)


if __name__ == "__main__":
    main()
