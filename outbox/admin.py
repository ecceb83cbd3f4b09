"""The outbox, read-only: events by workspace, type and published state, and the lag of what
is not published yet. Events are written by the changes they describe and deleted by pruning,
never by hand."""

import uuid

from django.contrib import admin
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from common.admin import EstimatedCountPaginator, ReadOnly, human_duration
from common.sql import fetch_one
from outbox import queries
from outbox.models import Event
from outbox.wire import EVENT_TYPES


class TypeFilter(admin.SimpleListFilter):
    """The types of spec §3, named here: listing the types present would read the table."""

    title = parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


class PublishedFilter(admin.SimpleListFilter):
    title = "published"
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", "published"), ("no", "not yet")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.published()
        if self.value() == "no":
            return queryset.unpublished()
        return queryset


@admin.register(Event)
class EventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("seq", "type", "workspace_id", "at", "published", "lag")
    list_filter = (TypeFilter, PublishedFilter)
    search_help_text = "A workspace's id"
    search_fields = ("workspace_id",)  # see get_search_results
    # Newest first, from the primary key: no sort of the history.
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_queryset(self, request):
        # How long it has waited so far (database clock), shown while it is not published.
        waited = ExpressionWrapper(Now() - F("at"), output_field=DurationField())
        return super().get_queryset(request).with_published().annotate(waited=waited)

    def get_search_results(self, request, queryset, search_term):
        """A workspace's events: the term is its id (anything else finds nothing)."""
        if not search_term.strip():
            return queryset, False
        try:
            workspace_id = uuid.UUID(search_term.strip())
        except ValueError:
            return queryset.none(), False
        return queryset.filter(workspace_id=workspace_id), False

    @admin.display(description="published", boolean=True)
    def published(self, event: Event) -> bool:
        return event.is_published

    @admin.display(description="lag")
    def lag(self, event: Event) -> str:
        return "" if event.is_published else f"waiting {human_duration(event.waited)}"

    def changelist_view(self, request, extra_context=None):
        backlog = fetch_one(queries.LAG)
        extra_context = {
            **(extra_context or {}),
            "unpublished": backlog.unpublished,
            "oldest_waiting": backlog.oldest_waiting and human_duration(backlog.oldest_waiting),
        }
        return super().changelist_view(request, extra_context)
