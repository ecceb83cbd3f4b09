"""Admin for agent tasks: a read-mostly view of what the sweeper and the daemons did."""

from django.contrib import admin
from django.utils.text import Truncator

from common.admin import EstimatedCountPaginator
from tasks.models import AgentTask

ERROR_PREVIEW_CHARS = 60


@admin.register(AgentTask)
class AgentTaskAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "status",
        "failure_reason",
        "error_preview",
        "agent",
        "runtime",
        "created_at",
        "dispatched_at",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "failure_reason")
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

    @admin.display(description="task", ordering="id")
    def short_id(self, task: AgentTask) -> str:
        return str(task.pk)[:8]

    @admin.display(description="error")
    def error_preview(self, task: AgentTask) -> str:
        return Truncator(task.error).chars(ERROR_PREVIEW_CHARS)
