"""The tasks app's domain signals. Sent after commit, once per change, with batches of
changed rows."""

from django.dispatch import Signal

# tasks: list[tasks.changes.FailedTask]
tasks_failed = Signal()
