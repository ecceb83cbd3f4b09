"""Domain signals are sent after commit, once per change, with batches of changed rows."""

from django.db import transaction
from django.dispatch import Signal


def send_on_commit(signal: Signal, sender, **kwargs) -> None:
    """Sends `signal` once the current transaction commits (at once outside one), and never
    if it rolls back. Robust both ways: a failing receiver cannot undo or break a change."""
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **kwargs), robust=True)
