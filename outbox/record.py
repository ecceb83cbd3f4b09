"""Recording events inside the caller's transaction: they exist exactly when the change they
describe commits. The relay is started once it has (outbox.relay, the fast path); the periodic
catch-up publishes whatever that start missed."""

import json
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from common.sql import execute
from outbox import queries, relay


def record(events: Iterable[dict]) -> int:
    """Writes `events` (outbox.wire.event dicts) in one statement, in the current transaction,
    in their order (which `seq` keeps). Returns how many."""
    events = list(events)
    if not events:
        return 0
    if not connection.in_atomic_block:
        # Outside a transaction the change has committed already: a crash before this insert
        # would lose its event.
        raise TransactionManagementError(
            "outbox events are recorded inside the change's transaction"
        )
    execute(
        queries.RECORD,
        workspace_ids=[e["workspace_id"] for e in events],
        types=[e["type"] for e in events],
        actor_types=[e["actor_type"] for e in events],
        payloads=[json.dumps(e["payload"]) for e in events],
    )
    transaction.on_commit(relay.relay_after_commit, robust=True)
    return len(events)
