"""The tasks app's domain signals. Sent after commit, once per change, with batches of
changed rows."""

from django.dispatch import Signal

# tasks: list[tasks.sweeps.FailedTask]
tasks_failed = Signal()
