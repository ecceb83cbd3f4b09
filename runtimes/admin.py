"""Admin for workspaces, runtimes and agents.

The changelists must stay fast at 100,000 rows: every column comes from the one page query
(`list_select_related`, annotations), and an unfiltered list is not counted row by row.
"""

from django.contrib import admin
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now
from django.urls import reverse
from django.utils.html import format_html

from common.admin import EstimatedCountPaginator, human_duration
from runtimes.models import Agent, AgentRuntime, DaemonToken, Workspace


def tasks_link(parameter: str, pk) -> str:
    """A link to the task list filtered to one row (tasks.admin's filters by id)."""
    url = reverse("admin:tasks_agenttask_changelist")
    return format_html('<a href="{}?{}={}">tasks</a>', url, parameter, pk)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at", "tasks")
    search_fields = ("name",)
    ordering = ("name",)
    filter_horizontal = ("members",)

    @admin.display(description="tasks")
    def tasks(self, workspace: Workspace) -> str:
        return tasks_link("workspace", workspace.pk)


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
        "tasks",
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
    readonly_fields = (
        "status",
        "last_seen_at",
        "offline_at",
        "offline_reason",
        "work_pending",
        "created_at",
    )
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

    @admin.display(description="tasks")
    def tasks(self, runtime: AgentRuntime) -> str:
        return tasks_link("runtime", runtime.pk)


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
    # A token stays with its workspace, and a revocation is final: revoke and make a new one.
    readonly_fields = ["workspace", "token_hash", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Made by `manage.py create_daemon_token`, the only place its secret is ever shown.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=Now())
        self.message_user(request, f"Revoked {revoked} token(s).")
