"""What every benchmark stands on: its own scratch database with Django on it, the bulk fill of
its world, timing, and the product's servers started against it.

A benchmark works only in "<name><suffix>" on the server DATABASE_URL names, never in that
database itself: `django_database` creates it afresh, migrates it, and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from common.sql import fetch
from tools import servers

SUFFIX_PREFIX = "_bench"
# PostgreSQL cuts longer names to this many bytes, so a longer "<name>_bench" could end up
# naming another database, even the real one.
MAX_NAME_BYTES = 63
VACUUM = "VACUUM ANALYZE workspace, agent_runtime, agent, agent_task"


def arguments(doc: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by the first line of its docstring, with the
    option every benchmark has."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    return parser


# --- the scratch database and Django on it ------------------------------------------------------


def scratch_url(url: str, suffix: str) -> str:
    """`url` with its database renamed "<name><suffix>"; the suffix starts with "_bench", so the
    result is never the database of `url` itself."""
    if not suffix.startswith(SUFFIX_PREFIX):
        raise ValueError(f"a scratch database suffix starts with {SUFFIX_PREFIX!r}: {suffix!r}")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + suffix
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"scratch database name longer than {MAX_NAME_BYTES} bytes: {name}")
    return urlunsplit(parts._replace(path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def server_sql(url: str, sql: str) -> None:
    """Runs CREATE/DROP DATABASE from the server's maintenance database."""
    import psycopg2

    conn = psycopg2.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def scratch_database(suffix: str, *, keep: bool) -> Iterator[str]:
    """Creates "<name><suffix>" afresh on the server of DATABASE_URL and yields its URL; drops
    it afterwards, whatever happened inside, unless `keep`."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit(f"{sys.argv[0]}: set DATABASE_URL to a PostgreSQL server")
    scratch = scratch_url(url, suffix)
    name = quoted(database_name(scratch))
    server_sql(scratch, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server_sql(scratch, f"CREATE DATABASE {name}")
    try:
        yield scratch
    finally:
        close_django_connections()
        if not keep:
            # FORCE: a server process started on it may still hold connections.
            server_sql(scratch, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(url: str) -> None:
    """Django on the database of `url`, migrated, with DEBUG off: no query log taxing the
    measurements. The environment says so, so that the servers started from this process
    (`serving`) run on the same database, as in production, and share its SECRET_KEY: a
    session made here is valid there."""
    os.environ.update(DATABASE_URL=url, DEBUG="0")
    # DEBUG off refuses a short or published key; plain HTTP on loopback (HTTPS=0).
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("HTTPS", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def close_django_connections() -> None:
    """This process's own connections, if Django got as far as being configured."""
    if "django.conf" not in sys.modules:
        return
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()


@contextmanager
def django_database(suffix: str, *, keep: bool) -> Iterator[str]:
    """The benchmark's scratch database (see `scratch_database`) with Django set up on it;
    yields its URL."""
    with scratch_database(suffix, keep=keep) as url:
        setup_django(url)
        yield url


# --- the world: bulk SQL ------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Runtime k of a benchmark's world, k in lo..hi-1: SQL expressions in k for the columns
    benchmarks set differently. Runtime k belongs to workspace number `workspace`, and with
    `agents` agent k runs on it. The expressions use mod() rather than `%`, which the driver
    would take for a parameter."""

    workspace: str
    status: str = "'online'"
    last_seen_at: str = "now()"
    offline_at: str = "NULL"
    provider: str = "'claude'"
    device_name: str = "''"
    version: str = "''"
    created_at: str = "now()"
    agents: bool = True


WORKSPACES = """
INSERT INTO workspace (id, name, created_at)
SELECT md5('ws' || w)::uuid, 'workspace ' || w, now()
FROM (SELECT DISTINCT {workspace} AS w FROM generate_series(%(lo)s, %(hi)s - 1) AS k) AS s
ORDER BY w
ON CONFLICT DO NOTHING
"""

RUNTIMES = """
INSERT INTO agent_runtime (id, workspace_id, name, daemon_id, provider, device_name, version,
                           status, last_seen_at, offline_at, metadata, created_at)
SELECT md5('rt' || k)::uuid, md5('ws' || ({workspace}))::uuid, 'runtime ' || k, 'daemon-' || k,
       {provider}, {device_name}, {version}, {status}, {last_seen_at}, {offline_at}, '{{}}',
       {created_at}
FROM generate_series(%(lo)s, %(hi)s - 1) AS k
"""

AGENTS = """
INSERT INTO agent (id, workspace_id, runtime_id, name, status, max_concurrent_tasks, created_at)
SELECT md5('ag' || k)::uuid, md5('ws' || ({workspace}))::uuid, md5('rt' || k)::uuid,
       'agent ' || k, 'idle', 6, now()
FROM generate_series(%(lo)s, %(hi)s - 1) AS k
"""

# `{tasks}` is a benchmark's query with one row a task: k (of runtime k and agent k), status,
# created_at, dispatched_at, started_at, completed_at, error, failure_reason.
TASKS = """
INSERT INTO agent_task (id, agent_id, runtime_id, issue_id, status, priority, created_at,
                        dispatched_at, started_at, completed_at, error, failure_reason)
SELECT gen_random_uuid(), md5('ag' || k)::uuid, md5('rt' || k)::uuid, gen_random_uuid(), status,
       0, created_at, dispatched_at, started_at, completed_at, error, failure_reason
FROM ({tasks}) AS t
"""


def fill(world: World, lo: int, hi: int) -> None:
    """Runtimes lo..hi-1 of `world`, their workspaces and agents, in one transaction."""
    statements = [WORKSPACES, RUNTIMES]
    if world.agents:
        statements.append(AGENTS)
    fetch(";".join(statements).format(**asdict(world)), lo=lo, hi=hi)


def fill_tasks(tasks: str, **params) -> None:
    """The tasks `tasks` selects (see TASKS), with its `params`."""
    fetch(TASKS.format(tasks=tasks), **params)


# --- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds `fn()` took, and what it returned."""
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1000, value


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    """The median of `runs` timings of `fn()`."""
    return statistics.median(timed(fn)[0] for _ in range(runs))


# --- the product's servers ----------------------------------------------------------------------


@contextmanager
def serving(
    name: str, *, port: int = 0, env: dict | None = None, module: str | None = None
) -> Iterator[tuple[subprocess.Popen, int]]:
    """The product's process `name` ("web" or "ws", tools/servers.py) on loopback `port` (0: a
    free one), on the benchmark's database with DEBUG off as `setup_django` left the
    environment (and `env` over it), until it serves HTTP; yields the process and its port."""
    env = {**os.environ, **(env or {})}
    env.pop("CONN_MAX_AGE", None)  # each server's own: kept by the web process, not by daphne
    process, port = servers.start(name, env, port=port, module=module)
    try:
        if name == "web":
            wait_for_workers(process)
        servers.wait_for_http(port, process)
        yield process, port
    finally:
        servers.stop(process)


def wait_for_workers(server: subprocess.Popen, timeout: float = 30) -> None:
    """Until the web process has started all its workers: connections opened before one of
    them listens go to the others, and stay with them."""
    deadline = time.monotonic() + timeout
    while len(servers.with_children([server.pid])) <= int(os.environ.get("WEB_WORKERS") or 2):
        assert server.poll() is None, "the web process exited at start"
        assert time.monotonic() < deadline, "the web process did not start its workers"
        time.sleep(0.05)


@contextmanager
def relay_held_elsewhere() -> Iterator[None]:
    """The outbox relay's lock held by another session, as a relay running elsewhere holds it:
    each commit's relay finds it taken and leaves (one query), and events wait unpublished."""
    import psycopg2
    from django.db import connection

    from outbox import relay

    other = psycopg2.connect(**connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [relay.LOCK_SPACE, relay.LOCK_KEY])
        yield
    finally:
        other.close()
