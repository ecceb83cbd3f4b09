"""The sweeper's own state, in PostgreSQL and on its clock, so that every process that sweeps
(beat's worker, `manage.py sweep`, two workers at once) reads and writes the same facts with
guarded updates: when it last swept, since when the platform could hear, and the brake."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

STATE_ID = 1


class SweeperState(models.Model):
    """One row. Missing until the first sweep: a database with no recorded sweep is not blind,
    there is nothing to infer from."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=STATE_ID, editable=False)
    # The last successful run of each sweep.
    runtimes_swept_at = models.DateTimeField(null=True, blank=True)
    tasks_swept_at = models.DateTimeField(null=True, blank=True)
    # The moment the platform could hear heartbeats again after it could not (a gap between
    # sweeps longer than the stale threshold, or a silent fleet): no runtime is judged on the
    # time before it.
    heard_since = models.DateTimeField(null=True, blank=True)
    # While the fleet is silent: the last heartbeat heard before the silence.
    silent_after = models.DateTimeField(null=True, blank=True)
    # The mass-outage brake: engaged by a sweep that would take too many runtimes offline.
    brake_engaged_at = models.DateTimeField(null=True, blank=True)
    brake_online = models.PositiveIntegerField(null=True, blank=True)
    brake_stale = models.PositiveIntegerField(null=True, blank=True)
    brake_released_at = models.DateTimeField(null=True, blank=True)
    brake_released_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    # Runtimes the sweeper marked offline that heartbeat again within the reconnect grace: its
    # verdicts the evidence contradicted. (Contradicted task verdicts are kept on the tasks.)
    contradicted_runtimes = models.PositiveBigIntegerField(default=0, db_default=0)
    # Where the collection of long-offline runtimes goes on next time: a cursor (offline_at,
    # id) through the candidates, so that each run reads a bounded part of them.
    gc_after_offline_at = models.DateTimeField(null=True, blank=True)
    gc_after_id = models.UUIDField(null=True, blank=True)

    class Meta:
        db_table = "sweeper_state"
        constraints = [
            models.CheckConstraint(condition=Q(id=STATE_ID), name="sweeper_state_one_row")
        ]

    def __str__(self) -> str:
        return "sweeper state"


class SweepStat(models.Model):
    """Each sweep's runs and how long they took, as a histogram (sweeper.stats.BUCKETS), for
    the metrics that any process serves. Written by the sweep's own record of success."""

    sweep = models.CharField(max_length=20, primary_key=True)
    runs = models.PositiveBigIntegerField(default=0, db_default=0)
    seconds_sum = models.FloatField(default=0, db_default=0)
    # Runs per bucket, not cumulative: one count per upper bound of BUCKETS, then +Inf.
    bucket_counts = ArrayField(models.PositiveBigIntegerField())

    class Meta:
        db_table = "sweeper_sweep_stat"

    def __str__(self) -> str:
        return self.sweep


class SweepCounter(models.Model):
    """What the sweeps changed, counted in the transaction of each chunk that changed it, so a
    count holds exactly what committed: `runtimes_marked_offline`, `tasks_failed` by reason."""

    metric = models.CharField(max_length=50)
    label = models.CharField(max_length=50, blank=True, default="", db_default="")
    value = models.PositiveBigIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "sweeper_counter"
        constraints = [
            models.UniqueConstraint(fields=["metric", "label"], name="sweeper_counter_key")
        ]

    def __str__(self) -> str:
        return f"{self.metric}{{{self.label}}}" if self.label else self.metric
