"""Domain signals are sent inside the transaction of the change, once per change, with batches
of changed rows."""

from django.db import connection
from django.db.transaction import TransactionManagementError
from django.dispatch import Signal


def send_in_transaction(signal: Signal, sender, **kwargs) -> None:
    """Sends `signal` now, inside the current transaction, so that what receivers record (the
    outbox's events) commits or rolls back with the change. Not robust, on purpose: a receiver
    that fails fails the change, which would otherwise commit without its event."""
    if not connection.in_atomic_block:
        raise TransactionManagementError(
            f"{sender.__name__}: a change is signalled in its transaction"
        )
    signal.send(sender=sender, **kwargs)
