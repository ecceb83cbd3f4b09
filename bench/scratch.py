"""The scratch database a benchmark fills and drops, beside the one DATABASE_URL names."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

SUFFIX_PREFIX = "_bench"
# PostgreSQL cuts longer names to this many bytes, so a longer "<name>_bench" could end up
# naming another database, even the real one.
MAX_NAME_BYTES = 63


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
    try:
        import psycopg2 as driver
    except ImportError:  # a psycopg 3 installation, as with Django's connection pool
        import psycopg as driver

    conn = driver.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def scratch_database(suffix: str, *, keep: bool, url: str | None = None) -> Iterator[str]:
    """Creates "<name><suffix>" afresh on the server of `url` (default: DATABASE_URL) and
    yields its URL; drops it afterwards, whatever happened inside, unless `keep`."""
    url = url or os.environ.get("DATABASE_URL")
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
    measurements. The local defaults (SECRET_KEY) are fine for a scratch database."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.DEBUG = False
    call_command("migrate", verbosity=0)


def close_django_connections() -> None:
    """This process's own connections, if Django got as far as being configured."""
    if "django.conf" not in sys.modules:
        return
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()
