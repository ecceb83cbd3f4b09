"""The tasks app's domain signals. Sent inside the change's transaction, once per change, with
batches of changed rows."""

from django.dispatch import Signal

# tasks: list[tasks.changes.FailedTask]
tasks_failed = Signal()

# tasks: list[tasks.changes.QueuedTask], the new attempts a member asked for
tasks_queued = Signal()
