"""Admin for workspaces, runtimes and agents.

The changelists must stay fast at 100,000 rows: every column comes from the one page query
(`list_select_related`, annotations), and an unfiltered list is not counted row by row.
"""

from datetime import timedelta

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Now
from django.utils.functional import cached_property

from runtimes.models import Agent, AgentRuntime, DaemonToken, Workspace


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
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return row[0] if row else -1


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


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    ordering = ("name",)
    filter_horizontal = ("members",)


@admin.register(AgentRuntime)
class AgentRuntimeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "provider",
        "status",
        "workspace",
        "daemon_id",
        "last_seen_at",
        "offline_for",
    )
    # Choices only: a filter on workspace would load every workspace to list them.
    list_filter = ("status",)
    search_fields = ("name", "daemon_id")
    list_select_related = ("workspace",)
    # The uniqueness index serves this order, so a page is read without sorting the table; by
    # the column, not the relation, so the admin sees it is total and adds no `-pk` tiebreak.
    ordering = ("workspace_id", "daemon_id", "provider")
    autocomplete_fields = ("workspace",)
    # The sweeper and the daemons' heartbeats own these.
    readonly_fields = ("status", "last_seen_at", "offline_at", "created_at")
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_queryset(self, request):
        # Measured on the database's clock, like every liveness decision; NULL while online.
        offline_for = ExpressionWrapper(Now() - F("offline_at"), output_field=DurationField())
        return super().get_queryset(request).annotate(offline_for=offline_for)

    @admin.display(description="offline for", ordering="-offline_at")
    def offline_for(self, runtime: AgentRuntime) -> str | None:
        if runtime.status != AgentRuntime.Status.OFFLINE or runtime.offline_for is None:
            return None
        return human_duration(runtime.offline_for)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "workspace", "runtime", "max_concurrent_tasks")
    list_filter = ("status",)
    search_fields = ("name",)
    list_select_related = ("workspace", "runtime")
    autocomplete_fields = ("workspace", "runtime")
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(DaemonToken)
class DaemonTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["workspace"]
    readonly_fields = ["token_hash", "created_at", "last_used_at"]
    autocomplete_fields = ["workspace"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Made by `manage.py create_daemon_token`, the only place its secret is ever shown.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=Now())
        self.message_user(request, f"Revoked {revoked} token(s).")
