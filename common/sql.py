"""The one executor for every app's named SQL: `%(name)s` parameters, rows by column name.

Rows come back as named tuples (`row.id`), or as instances of a dataclass built by keyword
from the columns (`fetch(SQL, into=FailedTask)`), so a reader never depends on the position of
a column in a `RETURNING` list written in another file.
"""

from __future__ import annotations

import re
import weakref
from collections import namedtuple
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from django.db import DatabaseError, connection, connections, transaction
from psycopg2.errorcodes import DUPLICATE_PREPARED_STATEMENT, INVALID_SQL_STATEMENT_NAME

T = TypeVar("T")


def fetch(sql: str, *, into: type[T] | None = None, using: str = "default", **params) -> list[Any]:
    """Runs `sql` with `params` on database `using`; its rows, as named tuples or as
    `into(**columns)`."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return _rows(cursor, into)


def fetch_one(
    sql: str, *, into: type[T] | None = None, using: str = "default", **params
) -> Any | None:
    """The first row of `sql` (see `fetch`), or None."""
    rows = fetch(sql, into=into, using=using, **params)
    return rows[0] if rows else None


def execute(sql: str, **params) -> int:
    """Runs `sql` for its effect; the number of rows it touched."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _rows(cursor, into: type | None) -> list:
    if cursor.description is None:
        return []
    row = _row_type(tuple(column.name for column in cursor.description))
    rows = [row._make(values) for values in cursor.fetchall()]
    return rows if into is None else [into(**r._asdict()) for r in rows]


@lru_cache(maxsize=256)
def _row_type(columns: tuple[str, ...]) -> type:
    return namedtuple("Row", columns)


def sql_list(values: tuple[str, ...]) -> str:
    """`('a', 'b')`: a tuple of constant words as an SQL list. Written into the statement
    rather than passed as a parameter, so that the planner matches it against the partial
    indexes that say the same."""
    assert all(re.fullmatch(r"\w+", value) for value in values), values
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


class Prepared:
    """A statement PostgreSQL plans once per connection instead of on every run. Planning the
    heartbeat cost more than running it: 0.56 ms of PostgreSQL's CPU a heartbeat, 0.22 ms
    prepared. A prepared statement lives in its database session, so this needs the session to
    be the app's own from one request to the next: a direct connection or a session-mode
    pooler, not transaction-mode pooling."""

    def __init__(self, name: str, sql: str):
        self.name, self.params = name, []
        self.sql = re.sub(r"%\((\w+)\)s", self._number, sql)
        # The driver connections it is prepared on; a reconnect is a new one, prepared anew.
        self.prepared_on = weakref.WeakSet()

    def _number(self, match: re.Match) -> str:
        if match[1] not in self.params:
            self.params.append(match[1])
        return f"${self.params.index(match[1]) + 1}"

    def fetch(self, *, into: type[T] | None = None, **params) -> list[Any]:
        args = [params[p] for p in self.params]
        execute = f"EXECUTE {self.name}" + (f" ({', '.join(['%s'] * len(args))})" if args else "")
        with connection.cursor() as cursor:
            if connection.connection not in self.prepared_on:
                self._prepare(cursor)
            try:
                cursor.execute(execute, args)
            except DatabaseError as exc:
                # Gone from the session (a DEALLOCATE, a pooler's reset): prepared again, once.
                if _sqlstate(exc) != INVALID_SQL_STATEMENT_NAME or not connection.get_autocommit():
                    raise
                self._prepare(cursor)
                cursor.execute(execute, args)
            return _rows(cursor, into)

    def fetch_one(self, *, into: type[T] | None = None, **params) -> Any | None:
        rows = self.fetch(into=into, **params)
        return rows[0] if rows else None

    def in_transaction(self, work: Callable[[], T]) -> T:
        """Runs `work`, which executes this statement, in a transaction of its own. Inside a
        transaction a stale statement (gone, or another's) cannot be mended in place: the error
        aborts it. So it is prepared afresh outside, and `work` runs once more."""
        try:
            with transaction.atomic():
                return work()
        except DatabaseError as exc:
            stale = _sqlstate(exc) in (INVALID_SQL_STATEMENT_NAME, DUPLICATE_PREPARED_STATEMENT)
            if not stale or not connection.get_autocommit():
                raise
        with connection.cursor() as cursor:
            self._prepare(cursor)
        with transaction.atomic():
            return work()

    def _prepare(self, cursor) -> None:
        try:
            cursor.execute(f"PREPARE {self.name} AS {self.sql}")
        except DatabaseError as exc:
            # A session kept by a pooler may hold one already, perhaps another release's.
            if _sqlstate(exc) != DUPLICATE_PREPARED_STATEMENT or not connection.get_autocommit():
                raise
            cursor.execute(f"DEALLOCATE {self.name}")
            cursor.execute(f"PREPARE {self.name} AS {self.sql}")
        self.prepared_on.add(connection.connection)


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "pgcode", None)
