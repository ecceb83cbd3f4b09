"""The sweeper's state in the admin: when it last swept, whether it could hear, the brake and
the contradicted verdicts. Written only by the sweeps, but for an operator's brake release."""

from django.contrib import admin

from common.admin import ReadOnly
from sweeper import guards
from sweeper.models import SweeperState


@admin.register(SweeperState)
class SweeperStateAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "__str__",
        "runtimes_swept_at",
        "tasks_swept_at",
        "heard_since",
        "silent_after",
        "brake_engaged_at",
        "brake_released_at",
        "brake_released_by",
        "contradicted_runtimes",
    )
    actions = ["release_brake"]

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("sweeper.change_sweeperstate")

    @admin.action(description="Release the mass-outage brake", permissions=["release"])
    def release_brake(self, request, queryset):
        if guards.release_brake(by=f"{request.user.get_username()} (admin)"):
            self.message_user(request, "Brake released: the tasks it held may fail now.")
        else:
            self.message_user(request, "The brake was not engaged.")
