"""What the tasks app's steps return: the rows they changed, for results and events."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class FailedTask:
    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID
    workspace_id: UUID
    failure_reason: str
    error: str


@dataclass(frozen=True)
class ClaimedTask:
    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID
    priority: int
    status: str


@dataclass(frozen=True)
class MovedTask:
    """A daemon's move of its task: started or completed."""

    id: UUID
    agent_id: UUID
    status: str
