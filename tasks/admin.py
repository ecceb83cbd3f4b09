"""Admin for agent tasks: a read-only view of what the sweeper and the daemons did, searched by
task or issue id and filtered by runtime, workspace and contradicted verdicts.

History is not edited here: tasks are made by the platform and never deleted from the admin,
and a failed task (the sweeper's verdict, or a daemon's) cannot be changed at all."""

from uuid import UUID

from django.contrib import admin
from django.db.models import Q
from django.utils.text import Truncator

from common.admin import EstimatedCountPaginator, uuid_prefix_range
from tasks.models import AgentTask

# The rows a task belongs to, through its own relations (the task's foreign keys are the one
# way the tasks app reaches into runtimes' models).
AgentRuntime = AgentTask._meta.get_field("runtime").related_model
Workspace = (
    AgentTask._meta.get_field("agent").related_model._meta.get_field("workspace").related_model
)

ERROR_PREVIEW_CHARS = 30


class _ByIdFilter(admin.SimpleListFilter):
    """A filter on one related row, chosen by its id in the URL (the runtime and workspace
    lists link here): listing every choice would read a whole table to draw the sidebar."""

    model = None
    field = ""

    def lookups(self, request, model_admin):
        # Only the chosen one, shown beside "All" to clear it. (A filter without choices is
        # not applied at all.)
        if self.value() is None:
            return []
        chosen = _uuid(self.value())
        row = chosen and self.model.objects.filter(pk=chosen).first()
        return [(self.value(), str(row) if row else f"no such {self.title}")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        chosen = _uuid(self.value())
        return queryset.filter(**{self.field: chosen}) if chosen else queryset.none()


class RuntimeFilter(_ByIdFilter):
    title = parameter_name = "runtime"
    model, field = AgentRuntime, "runtime_id"


class WorkspaceFilter(_ByIdFilter):
    title = parameter_name = "workspace"
    model, field = Workspace, "agent__workspace_id"


class ContradictedFilter(admin.SimpleListFilter):
    """Failed tasks a daemon's later report contradicted (from their partial index)."""

    title = "contradicted verdict"
    parameter_name = "contradicted"

    def lookups(self, request, model_admin):
        return [("yes", "contradicted"), ("no", "not contradicted")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        return queryset.filter(contradicted_at__isnull=self.value() == "no")


@admin.register(AgentTask)
class AgentTaskAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "status_and_reason",
        "error_preview",
        "agent",
        "runtime_name",
        # When it ended is on the task's page: a list at 1280 px has room for one time.
        "created_at",
    )
    list_filter = (
        "status",
        "failure_reason",
        ContradictedFilter,
        RuntimeFilter,
        WorkspaceFilter,
    )
    search_fields = ("id", "issue_id")  # see get_search_results
    search_help_text = "A task id or an issue id, whole or its first characters."
    list_select_related = ("agent", "runtime")
    # Newest first, read from the created_at index instead of sorting the whole history.
    ordering = ("-created_at",)
    autocomplete_fields = ("agent", "runtime")
    # The task's life is written by the daemons and the sweeper, never by hand.
    readonly_fields = (
        "status",
        "failure_reason",
        "error",
        "created_at",
        "dispatched_at",
        "started_at",
        "completed_at",
        "attempt",
        "retry_of",
        "leased",
        "unlisted_since",
        "contradicted_at",
        "contradicting_report",
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == AgentTask.Status.FAILED:
            return False
        return super().has_change_permission(request, obj)

    def get_search_results(self, request, queryset, search_term):
        """An id (task or issue) whole, from the primary key or the issue index, or the first
        characters of one, as a range of the same indexes; anything else finds nothing."""
        term = search_term.strip()
        if not term:
            return queryset, False
        whole = _uuid(term)
        if whole:
            return queryset.filter(Q(id=whole) | Q(issue_id=whole)), False
        bounds = uuid_prefix_range(term)
        if bounds is None:
            return queryset.none(), False
        low, high = bounds
        in_range = Q(id__gte=low, id__lte=high) | Q(issue_id__gte=low, issue_id__lte=high)
        return queryset.filter(in_range), False

    @admin.display(description="task", ordering="id")
    def short_id(self, task: AgentTask) -> str:
        return str(task.pk)[:8]

    @admin.display(description="status", ordering="status")
    def status_and_reason(self, task: AgentTask) -> str:
        if not task.failure_reason:
            return task.get_status_display()
        return f"{task.get_status_display()}: {task.failure_reason}"

    @admin.display(description="runtime", ordering="runtime__name")
    def runtime_name(self, task: AgentTask) -> str | None:
        return task.runtime.name if task.runtime else None

    @admin.display(description="error")
    def error_preview(self, task: AgentTask) -> str:
        return Truncator(task.error).chars(ERROR_PREVIEW_CHARS)


def _uuid(value) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None
