"""The outbox: one row an event, written inside the transaction of the change it describes.

A row is recorded without `seq`; the relay numbers rows as it reads them (see outbox.relay), so
`seq` is gap-free and follows commit order, and a numbered row is what a client may replay.
Whether a row is published is its workspace head's watermark, not a mark on the row: the relay
writes one row a workspace per step, where a mark would rewrite every event a second time.
The workspace is a plain id, not a foreign key: this leaf knows no domain model, and an event
outlives nothing it describes by more than the retention."""

from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Now


class EventQuerySet(models.QuerySet):
    def with_published(self):
        """Each event's `is_published`: its workspace's watermark has passed its `seq`."""
        past = Head.objects.filter(
            workspace_id=OuterRef("workspace_id"), published_seq__gte=OuterRef("seq")
        )
        return self.annotate(is_published=Exists(past))

    def published(self):
        return self.exclude(_waiting())

    def unpublished(self):
        return self.filter(_waiting())


def _waiting() -> Q:
    """Events not published yet: new ones, and those past a pending head's watermark. Built from
    the pending heads, so that it reads the partial index of new rows and a range of the
    (workspace, seq) index a pending workspace, not every event against its head."""
    waiting = Q(seq__isnull=True)
    for head in Head.objects.filter(published_seq__lt=F("seq")):
        waiting |= Q(workspace_id=head.workspace_id, seq__gt=head.published_seq)
    return waiting


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

    objects = EventQuerySet.as_manager()

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
            # The rows the relay numbers next: as small as the backlog, whatever the history.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="outbox_event_new"),
            # Pruning, oldest first.
            models.Index(fields=["at"], name="outbox_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} ({self.workspace_id})"


class Head(models.Model):
    """The last `seq` given in a workspace, and the last published: the events in between are
    numbered and wait for the relay. Only the relay writes it, under its lock."""

    workspace_id = models.UUIDField(primary_key=True)
    seq = models.BigIntegerField()
    published_seq = models.BigIntegerField(db_default=0)

    class Meta:
        db_table = "outbox_head"
        indexes = [
            # The workspaces with numbered events left to publish: the relay's first read.
            models.Index(
                fields=["workspace_id"],
                condition=Q(published_seq__lt=F("seq")),
                name="outbox_head_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} at #{self.seq}, published #{self.published_seq}"
