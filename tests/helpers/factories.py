"""Rows made from the spec's named fields alone, aged against the database's own clock, and a
log of the domain signals sent."""

import uuid

from django.db import transaction

from runtimes.models import Agent, AgentRuntime, Workspace
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago


class Factory:
    """Makes rows from the spec's named fields alone, with sensible defaults."""

    def workspace(self, name: str = "acme") -> Workspace:
        return Workspace.objects.create(name=name)

    def runtime(self, workspace=None, *, seen_ago: float | None = 0, **fields) -> AgentRuntime:
        fields.setdefault("name", "laptop claude")
        fields.setdefault("daemon_id", f"daemon-{uuid.uuid4().hex[:8]}")
        fields.setdefault("provider", "claude")
        last_seen = None if seen_ago is None else seconds_ago(seen_ago)
        runtime = AgentRuntime.objects.create(
            workspace=workspace or self.workspace(), last_seen_at=last_seen, **fields
        )
        runtime.refresh_from_db()
        return runtime

    def agent(self, runtime=None, **fields) -> Agent:
        runtime = runtime or self.runtime()
        fields.setdefault("name", "coder")
        return Agent.objects.create(workspace=runtime.workspace, runtime=runtime, **fields)

    def task(self, agent=None, *, status: str = "queued", age: float = 0, **fields) -> AgentTask:
        """A task in `status`, `age` seconds into it by the database clock."""
        agent = agent or self.agent()
        if status in ("dispatched", "running", "completed", "failed"):
            fields.setdefault("dispatched_at", seconds_ago(age))
        if status in ("running", "completed", "failed"):
            fields.setdefault("started_at", seconds_ago(age))
        task = AgentTask.objects.create(
            agent=agent,
            runtime=agent.runtime,
            issue_id=uuid.uuid4(),
            status=status,
            **fields,
        )
        task.refresh_from_db()
        return task


class SignalLog:
    """Records every domain signal sent while it is connected, flattened to one entry a row,
    once its transaction commits (signals are sent inside it): what a committed change said."""

    def __init__(self):
        self.runtimes_offline = []
        self.tasks_failed = []
        self.agents = []
        self.runtimes_changed = []
        self.tasks_queued = []

    def on_offline(self, sender, runtimes, **kwargs):
        transaction.on_commit(lambda: self.runtimes_offline.extend(runtimes))

    def on_failed(self, sender, tasks, **kwargs):
        transaction.on_commit(lambda: self.tasks_failed.extend(tasks))

    def on_agents(self, sender, agents, **kwargs):
        transaction.on_commit(lambda: self.agents.extend(agents))

    def on_queued(self, sender, tasks, **kwargs):
        self.tasks_queued += tasks

    def on_changed(self, sender, action, runtimes, **kwargs):
        changed = [(action, r) for r in runtimes]
        transaction.on_commit(lambda: self.runtimes_changed.extend(changed))
