"""The runtimes app's domain signals. Sent after commit, once per change, with batches of
changed rows (a mass outage is one signal per chunk, not ten thousand)."""

from django.db import transaction
from django.dispatch import Signal

# runtimes: list[runtimes.sweeps.RuntimeChange]
runtimes_went_offline = Signal()

# agents: list[runtimes.sweeps.AgentChange]
agents_status_changed = Signal()

# Runtimes whose status the daemon-facing API changed. action: "register" | "online" |
# "deregister"; runtimes: list[runtimes.sweeps.RuntimeChange]
runtimes_changed = Signal()


def send_on_commit(signal: Signal, sender, **kwargs) -> None:
    """Sends `signal` once the current transaction commits (at once outside one), and never
    if it rolls back. Robust both ways: a failing receiver cannot undo or break a change."""
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **kwargs), robust=True)
