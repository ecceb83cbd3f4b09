from django.db import migrations, models

# Each workspace's watermark starts below its first numbered event still unpublished, or at its
# head when there is none, so the relay publishes exactly what the per-row mark had left.
CARRY_OVER = """
UPDATE outbox_head AS h SET published_seq = coalesce(
    (SELECT min(e.seq) - 1 FROM outbox_event AS e
     WHERE e.workspace_id = h.workspace_id AND e.seq IS NOT NULL AND e.published_at IS NULL),
    h.seq
)
"""


class Migration(migrations.Migration):

    dependencies = [
        ('outbox', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='head',
            name='published_seq',
            field=models.BigIntegerField(db_default=0),
        ),
        migrations.RunSQL(CARRY_OVER, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='event',
            name='outbox_event_unpublished',
        ),
        migrations.RemoveField(
            model_name='event',
            name='published_at',
        ),
        migrations.AddIndex(
            model_name='head',
            index=models.Index(condition=models.Q(('published_seq__lt', models.F('seq'))), fields=['workspace_id'], name='outbox_head_pending'),
        ),
    ]
