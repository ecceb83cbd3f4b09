import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Workspace(models.Model):
    """A tenant: its members, and only they, may watch its events."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="workspaces", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workspace"

    def __str__(self) -> str:
        return self.name


class AgentRuntime(models.Model):
    """One agent backend on one daemon; kept online by the daemon's heartbeats."""

    class Status(models.TextChoices):
        ONLINE = "online"
        OFFLINE = "offline"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runtimes")
    name = models.CharField(max_length=200)
    daemon_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=100)
    device_name = models.CharField(max_length=200, blank=True, default="")
    version = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ONLINE)
    # Written with the database's now() by heartbeats; NULL means never seen, and a never-seen
    # runtime is judged by `created_at`.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    offline_at = models.DateTimeField(null=True, blank=True)
    # Why it last went offline: the sweeper found it stale (its tasks wait out the reconnect
    # grace), or its daemon deregistered it (its tasks fail at the next sweep). Blank for any
    # other path, which is judged like stale.
    offline_reason = models.CharField(
        max_length=16, blank=True, default="", db_default="", editable=False
    )
    # Offline with dispatched or running tasks maybe left. A trigger (migration 0004) sets it
    # whenever the status becomes offline, by whatever path; the runtime sweep clears it once
    # those tasks have failed (claims refuse offline runtimes, so no new work arrives). True
    # by default, so that a runtime made offline is checked once too.
    work_pending = models.BooleanField(default=True, db_default=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A member dismissed it from the board as gone for good, while it was offline. Hidden
    # until it goes offline again after coming back (offline_at later than this).
    dismissed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "agent_runtime"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "daemon_id", "provider"],
                name="agent_runtime_unique_per_daemon_provider",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["online", "offline"]),
                name="agent_runtime_status_valid",
            ),
        ]
        indexes = [
            # The stale sweep's range scan: only online runtimes are candidates.
            models.Index(
                fields=["last_seen_at"],
                name="agent_runtime_online_seen_idx",
                condition=Q(status="online"),
            ),
            # Online runtimes never seen, judged by when they were made.
            models.Index(
                fields=["created_at"],
                name="agent_runtime_never_seen_idx",
                condition=Q(status="online", last_seen_at__isnull=True),
            ),
            # Offline runtimes, by how long: the admin's filter and "offline for" column.
            models.Index(
                fields=["offline_at"],
                name="agent_runtime_offline_idx",
                condition=Q(status="offline"),
            ),
            # The few offline runtimes whose tasks the sweep has still to fail.
            models.Index(
                fields=["id"],
                name="agent_runtime_work_pending_idx",
                condition=Q(status="offline", work_pending=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider} on {self.daemon_id})"


class Agent(models.Model):
    class Status(models.TextChoices):
        IDLE = "idle"
        WORKING = "working"
        BLOCKED = "blocked"
        ERROR = "error"
        OFFLINE = "offline"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    runtime = models.ForeignKey(AgentRuntime, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IDLE)
    max_concurrent_tasks = models.PositiveIntegerField(default=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agent"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["idle", "working", "blocked", "error", "offline"]),
                name="agent_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_tasks__gt=0),
                name="agent_max_concurrent_tasks_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DaemonToken(models.Model):
    """A bearer token a workspace's daemons authenticate with. Only its SHA-256 is stored, so
    a leaked database does not leak usable tokens; `create_daemon_token` shows it once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="daemon_tokens")
    name = models.CharField(max_length=200, blank=True, default="")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Touched at most once a minute, so heartbeats do not turn into token writes.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "daemon_token"

    def __str__(self) -> str:
        return self.name or f"token {self.id}"
