"""The runtimes app's domain signals. Sent inside the change's transaction
(`common.signals.send_in_transaction`), once per change, with batches of changed rows (a mass
outage is one signal per chunk, not ten thousand)."""

from django.dispatch import Signal

# runtimes: list[runtimes.changes.RuntimeChange]
runtimes_went_offline = Signal()

# agents: list[runtimes.changes.AgentChange]
agents_status_changed = Signal()

# Runtimes whose status the daemon-facing API changed. action: "register" | "online" |
# "deregister"; runtimes: list[runtimes.changes.RuntimeChange]
runtimes_changed = Signal()
