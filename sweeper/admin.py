"""The sweeper's page in the admin: when each sweep last succeeded and how long sweeps take,
the dead-man's switch, the brake, whether the platform can hear, what the sweeps changed and
the contradicted verdicts. Written only by the sweeps, but for an operator's brake release."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin

from sweeper import guards, health, state, stats
from sweeper.models import SweeperState
from tasks import steps as task_steps


@admin.register(SweeperState)
class SweeperStateAdmin(admin.ModelAdmin):
    # The rest is in the overview above the row (templates/admin/sweeper/...).
    list_display = (
        "__str__",
        "runtimes_swept_at",
        "tasks_swept_at",
        "heard_since",
        "brake_engaged_at",
    )
    actions = ["release_brake"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("sweeper.change_sweeperstate")

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **overview()})

    @admin.action(description="Release the mass-outage brake", permissions=["release"])
    def release_brake(self, request, queryset):
        if guards.release_brake(by=f"{request.user.get_username()} (admin)"):
            self.message_user(request, "Brake released: the tasks it held may fail now.")
        else:
            self.message_user(request, "The brake was not engaged.")


def overview() -> dict:
    """What the sweeper page shows above the state row."""
    interval = timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)
    judged = health.check(interval=interval)
    current = state.peek()
    runs = {run.sweep: run for run in stats.runs()}
    counted = stats.counters()
    sweeps = [
        {
            "name": sweep,
            "last_success": current and getattr(current, state.SWEPT_AT[sweep]),
            "ago": age,
            "runs": runs[sweep].runs if sweep in runs else 0,
            "mean_ms": _mean_ms(runs.get(sweep)),
        }
        for sweep, age in judged.ages.items()
    ]
    return {
        "health": judged,
        "sweeps": sweeps,
        "state": current,
        "blind": health.blind(
            current, stale_after=timedelta(seconds=settings.RUNTIME_STALE_SECONDS)
        ),
        "marked_offline": counted.get(("runtimes_marked_offline", ""), 0),
        "tasks_failed": sorted(
            (label, n) for (metric, label), n in counted.items() if metric == "tasks_failed"
        ),
        "contradicted_tasks": task_steps.contradicted_count(),
    }


def _mean_ms(run: stats.SweepRuns | None) -> float | None:
    return None if not run or not run.runs else 1000 * run.seconds_sum / run.runs
