import uuid

from django.db import models
from django.db.models import Q

from common.states import ACTIVE_TASK_STATUSES
from runtimes.models import Agent, AgentRuntime, Workspace


class AgentTask(models.Model):
    """One unit of agent work on an issue: queued -> dispatched -> running -> terminal."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        DISPATCHED = "dispatched"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class FailureReason(models.TextChoices):
        NONE = "", "—"
        RUNTIME_OFFLINE = "runtime_offline"
        TIMEOUT = "timeout"
        AGENT_ERROR = "agent_error"
        ORPHANED = "orphaned"
        QUEUED_EXPIRED = "queued_expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tasks")
    # NULL once the runtime is collected (offline for RUNTIME_GC_AFTER_SECONDS): the task's
    # history stays, with its agent, its issue and what happened.
    runtime = models.ForeignKey(
        AgentRuntime, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    # Its agent's workspace, copied on insert by a trigger (migration 0004) whatever the
    # writer, so that a workspace's tasks are one index range instead of a join over its agents.
    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,
    )
    issue_id = models.UUIDField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    priority = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    failure_reason = models.CharField(
        max_length=32, choices=FailureReason.choices, blank=True, default=""
    )
    result = models.JSONField(null=True, blank=True)
    # A daemon's report on a task the sweeper had already failed: the verdict it contradicts.
    # The first report is kept ({"status": "completed", "result": ...} or {"status": "failed",
    # "error": ...}); the task stays failed.
    contradicted_at = models.DateTimeField(null=True, blank=True)
    contradicting_report = models.JSONField(null=True, blank=True)
    # Attempts: a task the sweeper fails is queued again as a new task while attempt is below
    # max_attempts (NULL: TASK_MAX_ATTEMPTS); the failed attempt stays as history.
    attempt = models.PositiveIntegerField(default=1, db_default=1)
    max_attempts = models.PositiveIntegerField(null=True, blank=True)
    retry_of = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retry"
    )
    # Leases: a heartbeat of its runtime listed it (from then on, only TASK_MAX_RUNNING_SECONDS
    # stops it running), or since when its runtime's heartbeats no longer list it.
    leased = models.BooleanField(default=False, db_default=False)
    unlisted_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_task"
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "queued",
                        "dispatched",
                        "running",
                        "completed",
                        "failed",
                        "cancelled",
                    ]
                ),
                name="agent_task_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    failure_reason__in=[
                        "",
                        "runtime_offline",
                        "timeout",
                        "agent_error",
                        "orphaned",
                        "queued_expired",
                    ]
                ),
                name="agent_task_failure_reason_valid",
            ),
        ]
        # Partial indexes: a sweep reads only live work, never the unbounded history of
        # finished tasks.
        indexes = [
            models.Index(
                fields=["runtime"],
                name="agent_task_active_runtime_idx",
                condition=Q(status__in=ACTIVE_TASK_STATUSES),
            ),
            models.Index(
                fields=["agent"],
                name="agent_task_active_agent_idx",
                condition=Q(status__in=ACTIVE_TASK_STATUSES),
            ),
            models.Index(
                fields=["dispatched_at"],
                name="agent_task_dispatched_idx",
                condition=Q(status="dispatched"),
            ),
            models.Index(
                fields=["started_at"],
                name="agent_task_running_idx",
                condition=Q(status="running"),
            ),
            # The claim order: highest priority first, then the oldest.
            models.Index(
                "runtime",
                models.F("priority").desc(),
                "created_at",
                name="agent_task_queue_idx",
                condition=Q(status="queued"),
            ),
            models.Index(fields=["-created_at"], name="agent_task_created_idx"),
            # The admin's search by issue and its list of a runtime's tasks, newest first.
            models.Index(fields=["issue_id"], name="agent_task_issue_idx"),
            models.Index(fields=["runtime", "-created_at"], name="agent_task_runtime_created_idx"),
            # Running tasks no heartbeat vouches for, by age: the running timeout's range. The
            # vouched-for ones are judged by the maximum running time, on the index above.
            models.Index(
                fields=["started_at"],
                name="agent_task_unleased_idx",
                condition=Q(status="running", leased=False),
            ),
            # Queued expiry's range: only queued tasks, by age.
            models.Index(
                fields=["created_at"],
                name="agent_task_queued_age_idx",
                condition=Q(status="queued"),
            ),
            # The few live tasks their daemon no longer lists: the orphan sweep's range.
            models.Index(
                fields=["unlisted_since"],
                name="agent_task_unlisted_idx",
                condition=Q(status__in=ACTIVE_TASK_STATUSES, unlisted_since__isnull=False),
            ),
            # The board and the read API: a workspace's tasks newest first, all of them or of
            # one status; its failures by when they failed, all or of one reason.
            models.Index(
                "workspace",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="agent_task_ws_created_idx",
            ),
            models.Index(
                "workspace",
                "status",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="agent_task_ws_status_idx",
            ),
            models.Index(
                "workspace",
                models.F("completed_at").desc(),
                models.F("id").desc(),
                name="agent_task_ws_failed_idx",
                condition=Q(status="failed"),
            ),
            models.Index(
                "workspace",
                "failure_reason",
                models.F("completed_at").desc(),
                models.F("id").desc(),
                name="agent_task_ws_reason_idx",
                condition=Q(status="failed"),
            ),
            # The few contradicted verdicts, for the admin's filter and the counts.
            models.Index(
                fields=["-contradicted_at"],
                name="agent_task_contradicted_idx",
                condition=Q(contradicted_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.id} ({self.status})"
