"""Admin benchmark: the runtime and task pages at a small and a large table, against Django's
defaults for the same columns, measured in the same run on the same data.

    DATABASE_URL=postgres://... python -m bench.admin [--rows N] [--small-rows N] [--runs N]

Works only in its own database, `<name>_bench_admin` on the DATABASE_URL server: it creates
and migrates it, fills it with bulk SQL, and drops it at the end unless --keep.
"""

import statistics
import sys
import time
import types

from bench.common import (
    VACUUM,
    World,
    arguments,
    django_database,
    fill,
    fill_tasks,
    median_ms,
    timed,
)
from common.sql import fetch, fetch_one

RUNTIMES_PER_WORKSPACE = 100

# Runtime k is offline when k % 10 = 3 and has one agent and one task. Timestamps need only be
# plausible for display.
WORLD = World(
    workspace=f"k / {RUNTIMES_PER_WORKSPACE}",
    provider="CASE WHEN mod(k, 2) = 0 THEN 'claude' ELSE 'codex' END",
    version="'1.0'",
    status="CASE WHEN mod(k, 10) = 3 THEN 'offline' ELSE 'online' END",
    last_seen_at="now() - mod(k, 3600) * interval '1 second'",
    offline_at="CASE WHEN mod(k, 10) = 3 THEN now() - mod(k, 86400) * interval '1 second' END",
    created_at="now() - k * interval '1 second'",
)

# Task states: 5% each queued, dispatched, running, cancelled, failed by timeout and failed by
# runtime_offline; then the rest, completed.
TASKS = """
SELECT i AS k, (ARRAY['queued', 'dispatched', 'running', 'cancelled', 'failed', 'failed'])[b + 1]
       AS status, at AS created_at, at AS dispatched_at, at AS started_at, at AS completed_at,
       CASE b WHEN 4 THEN 'task timed out' WHEN 5 THEN 'runtime went offline' ELSE '' END
       AS error,
       CASE b WHEN 4 THEN 'timeout' WHEN 5 THEN 'runtime_offline' ELSE '' END AS failure_reason
FROM (SELECT i, i %% 20 AS b, now() - i * interval '1 second' AS at
      FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS s
WHERE b < 6
"""
COMPLETED_TASKS = """
SELECT i AS k, 'completed' AS status, at AS created_at, at AS dispatched_at, at AS started_at,
       at AS completed_at, '' AS error, '' AS failure_reason
FROM (SELECT i, now() - i * interval '1 second' AS at
      FROM generate_series(%(lo)s, %(hi)s - 1) AS i WHERE i %% 20 >= 6) AS s
"""

PAGES = [
    ("runtimes", "runtimes/agentruntime/", {}),
    ("runtimes, offline", "runtimes/agentruntime/", {"status__exact": "offline"}),
    ("runtimes, search", "runtimes/agentruntime/", {"q": "daemon-424"}),
    ("runtime change form", "runtimes/agentruntime/{runtime}/change/", {}),
    ("tasks", "tasks/agenttask/", {}),
    ("tasks, failed", "tasks/agenttask/", {"status__exact": "failed"}),
    ("tasks, timeout", "tasks/agenttask/", {"failure_reason__exact": "timeout"}),
    ("task change form", "tasks/agenttask/{task}/change/", {}),
]


def parse_args():
    parser = arguments(__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="runtimes, agents and tasks")
    parser.add_argument("--small-rows", type=int, default=1_000, help="the first size")
    parser.add_argument("--runs", type=int, default=7, help="requests per median")
    return parser.parse_args()


def defaults_site():
    """The same models and columns on Django's defaults: exact and full counts, `-pk` order,
    plain selects for foreign keys, "offline for" from the application's clock."""
    from django.contrib import admin
    from django.utils import timezone

    from runtimes.models import AgentRuntime
    from tasks.models import AgentTask

    site = admin.AdminSite(name="defaults")

    @admin.register(AgentRuntime, site=site)
    class RuntimeDefaults(admin.ModelAdmin):
        list_display = ("name", "provider", "status", "workspace", "daemon_id", "last_seen_at")
        list_display += ("offline_for",)
        list_filter = ("status",)
        search_fields = ("name", "daemon_id")

        def offline_for(self, runtime):
            return runtime.offline_at and timezone.now() - runtime.offline_at

    @admin.register(AgentTask, site=site)
    class TaskDefaults(admin.ModelAdmin):
        list_display = ("id", "status", "failure_reason", "error", "agent", "runtime")
        list_display += ("created_at", "dispatched_at", "started_at", "completed_at")
        list_filter = ("status", "failure_reason")

    return site


def install_urls() -> None:
    """Serves this admin under /admin/ and the defaults under /defaults/."""
    from django.conf import settings
    from django.contrib import admin
    from django.urls import path

    module = types.ModuleType("bench_admin_urls")
    module.urlpatterns = [
        path("admin/", admin.site.urls),
        path("defaults/", defaults_site().urls),
    ]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__


def fill_rows(lo: int, hi: int) -> None:
    """Rows lo..hi-1 of each table."""
    print(f"filling rows {lo:,}..{hi:,} ...", file=sys.stderr)
    fill(WORLD, lo, hi)
    fill_tasks(TASKS, lo=lo, hi=hi)
    fill_tasks(COMPLETED_TASKS, lo=lo, hi=hi)
    fetch(VACUUM)


def logged_in_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


class QueryTimer:
    """Counts and times the queries run while installed as an execute wrapper."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - start


def measure(client, url: str, params: dict, runs: int) -> tuple[float, float, int]:
    """Median milliseconds of `runs` requests after a warm-up, and the median SQL
    milliseconds and the query count of a request."""
    from django.db import connection

    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    times, timers = [], []
    for _ in range(runs):
        timers.append(QueryTimer())
        with connection.execute_wrapper(timers[-1]):
            times.append(timed(lambda: client.get(url, params))[0])
    sql_ms = statistics.median(timer.seconds * 1000 for timer in timers)
    return statistics.median(times), sql_ms, timers[-1].count


def measure_size(client, runs: int) -> list[tuple]:
    ids = {
        "runtime": fetch_one("SELECT id FROM agent_runtime LIMIT 1").id,
        "task": fetch_one("SELECT id FROM agent_task LIMIT 1").id,
    }
    rows = []
    for label, path, params in PAGES:
        path = path.format(**ids)
        ours = measure(client, f"/admin/{path}", params, runs)
        defaults = measure(client, f"/defaults/{path}", params, runs)
        rows.append((label, *ours, *defaults))
    return rows


def count_ms(table: str, runs: int) -> float:
    return median_ms(lambda: fetch(f"SELECT count(*) FROM {table}"), runs)


def print_table(results: dict[int, list[tuple]], counts: dict[int, tuple]) -> None:
    head = ("ms", "sql ms", "queries")
    print(f"{'':<31}{'this admin':^27}|{'Django defaults':^27}")
    print(f"{'page':<22}{'rows':>9}" + "".join(f"{h:>9}" for h in head * 2))
    for size, rows in results.items():
        for label, *figures in rows:
            cells = "".join(f"{f:>9.1f}" if isinstance(f, float) else f"{f:>9}" for f in figures)
            print(f"{label:<22}{size:>9,}{cells}")
    for size, (runtimes, tasks) in counts.items():
        print(
            f"count(*) at {size:,} rows: agent_runtime {runtimes:.1f} ms, agent_task {tasks:.1f} ms"
        )


def run(args) -> None:
    client = logged_in_client()
    results, counts = {}, {}
    lo = 0
    for size in (args.small_rows, args.rows):
        fill_rows(lo, size)
        lo = size
        results[size] = measure_size(client, args.runs)
        counts[size] = (count_ms("agent_runtime", args.runs), count_ms("agent_task", args.runs))
    print_table(results, counts)


def main() -> None:
    args = parse_args()
    # DEBUG off (django_database): queries are counted and timed by QueryTimer instead.
    with django_database("_bench_admin", keep=args.keep):
        install_urls()
        run(args)


if __name__ == "__main__":
    main()
