"""Every write to `agent`. The sweeper and the daemon API's task moves change agents through
these, so that one place decides which status moves an agent may make."""

from uuid import UUID

from django.db import transaction

from common.signals import send_in_transaction
from common.sql import execute, fetch
from runtimes import queries
from runtimes.changes import AgentChange
from runtimes.signals import agents_status_changed


def idle_agents_without_work(*, agent_ids: list[UUID]) -> list[AgentChange]:
    """Sets `working` agents among `agent_ids` that have no dispatched or running task to
    `idle`, and announces them in the transaction. Returns the agents it changed."""
    if not agent_ids:
        return []
    ids = sorted(set(agent_ids))
    # The locks need a transaction, the caller's if any; a savepoint would add two round trips
    # a sweep chunk and protect nothing: an error here fails the caller's change too.
    with transaction.atomic(savepoint=False):
        execute(queries.LOCK_WORKING_AGENTS, agent_ids=ids)  # its rows are not needed
        changed = fetch(queries.IDLE_AGENTS_WITHOUT_WORK, into=AgentChange, agent_ids=ids)
        _announce(changed)
    return changed


def set_working(*, agent_id: UUID) -> list[AgentChange]:
    """An `idle` agent starts working (any other status is left as it is); announced."""
    changed = fetch(queries.AGENT_STARTS_WORKING, into=AgentChange, agent_id=agent_id)
    _announce(changed)
    return changed


def _announce(changed: list[AgentChange]) -> None:
    if changed:
        send_in_transaction(agents_status_changed, sender=AgentChange, agents=changed)
