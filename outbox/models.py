"""The outbox: one row an event, written inside the transaction of the change it describes.

A row is recorded without `seq`; the relay numbers rows as it reads them (see outbox.relay), so
`seq` is gap-free and follows commit order, and a published row is what a client may replay.
The workspace is a plain id, not a foreign key: this leaf knows no domain model, and an event
outlives nothing it describes by more than the retention."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace_id = models.UUIDField()
    # None until the relay numbers it; then its place in the workspace's stream (the cursor of
    # `?after=`).
    seq = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16, default="system")
    payload = models.JSONField()
    # When the change was recorded, inside its transaction: its commit, give or take the rest
    # of that transaction.
    at = models.DateTimeField(db_default=Now())
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_event"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "seq"],
                condition=Q(seq__isnull=False),
                name="outbox_event_workspace_seq",
            ),
        ]
        indexes = [
            # The relay's two reads: rows to number, rows numbered but not yet published. Both
            # stay as small as the backlog, whatever the history.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="outbox_event_new"),
            models.Index(
                fields=["workspace_id", "seq"],
                condition=Q(published_at__isnull=True),
                name="outbox_event_unpublished",
            ),
            # Pruning, oldest first.
            models.Index(fields=["at"], name="outbox_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} ({self.workspace_id})"


class Head(models.Model):
    """The last `seq` given in a workspace. Only the relay writes it, under its lock."""

    workspace_id = models.UUIDField(primary_key=True)
    seq = models.BigIntegerField()

    class Meta:
        db_table = "outbox_head"

    def __str__(self) -> str:
        return f"{self.workspace_id} at #{self.seq}"
