"""Receives the domain signals inside the transaction of the change they report, and records
their events in the outbox (spec §3), one statement a signal. The outbox relays them to the
browsers of each workspace once the transaction commits."""

from collections import defaultdict

from outbox.record import record
from outbox.wire import event, group_name, queued_payload, task_payload

__all__ = [
    "group_name",
    "on_agents_status_changed",
    "on_runtimes_changed",
    "on_tasks_failed",
    "on_tasks_queued",
]


def on_runtimes_went_offline(sender, runtimes, **kwargs) -> None:
    on_runtimes_changed(sender, action="stale_sweep", runtimes=runtimes)


def on_runtimes_changed(sender, action: str, runtimes, **kwargs) -> None:
    by_workspace = defaultdict(list)
    for runtime in runtimes:
        by_workspace[runtime.workspace_id].append(str(runtime.id))
    record(
        event("daemon:register", workspace_id, {"action": action, "runtime_ids": ids})
        for workspace_id, ids in by_workspace.items()
    )


def on_tasks_failed(sender, tasks, **kwargs) -> None:
    record(event("task:failed", task.workspace_id, task_payload(task)) for task in tasks)


def on_tasks_queued(sender, tasks, **kwargs) -> None:
    record(event("task:queued", task.workspace_id, queued_payload(task)) for task in tasks)


def on_agents_status_changed(sender, agents, **kwargs) -> None:
    record(
        event("agent:status", a.workspace_id, {"agent_id": str(a.id), "status": a.status})
        for a in agents
    )
