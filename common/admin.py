"""Helpers for admin pages that must stay fast at 100,000 rows, and read well."""

from datetime import timedelta
from uuid import UUID

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from common.sql import fetch_one


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list from PostgreSQL's statistics instead of `count(*)`.

    `count(*)` reads every row (PostgreSQL keeps no row count), so on a large table it is the
    most expensive part of opening a changelist. A filtered or searched list, or a small table,
    is still counted exactly.
    """

    # Below this many rows an exact count costs a few milliseconds and is worth having. Above
    # it, an estimate off by a few percent only makes the last page short or a few rows
    # reachable by sorting rather than by page number.
    exact_below = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            estimate = estimated_row_count(queryset.db, queryset.model._meta.db_table)
            if estimate >= self.exact_below:
                return estimate
        return super().count


def estimated_row_count(using: str, table: str) -> int:
    """The planner's row estimate for `table`; -1 until the table was first analyzed."""
    row = fetch_one(
        "SELECT reltuples::bigint AS estimate FROM pg_class WHERE oid = %(table)s::regclass",
        using=using,
        table=table,
    )
    return row.estimate if row else -1


def human_duration(duration: timedelta) -> str:
    """'45s', '12m 3s', '3h 12m', '2d 4h': the two largest units are enough to read."""
    seconds = max(int(duration.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value}{unit}" for value, unit in parts[:2])


class ReadOnly:
    """A model admin mixin for rows that only the product writes: viewed, never added, changed
    or deleted by hand (the admin's actions are the only way to act on them)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def uuid_prefix_range(prefix: str) -> tuple[UUID, UUID] | None:
    """The lowest and highest UUIDs that start with `prefix` (hex digits, dashes ignored, at
    least 4 of them, as the admin shows an id's first 8): a range an index reads directly."""
    digits = prefix.replace("-", "").lower()
    if not 4 <= len(digits) < 32 or not all(c in "0123456789abcdef" for c in digits):
        return None
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))
