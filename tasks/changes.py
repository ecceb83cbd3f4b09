"""What the tasks app's steps return: the rows they changed, for results and events."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class FailedTask:
    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID | None  # None: a queued task whose runtime was collected
    workspace_id: UUID
    failure_reason: str
    error: str
    retry_task_id: UUID | None = None  # its next attempt, queued with the failure
    retry_due: bool = False  # a sweeper's failure with budget left: its next attempt is queued


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


@dataclass(frozen=True)
class QueuedTask:
    """A new attempt of a failed task, queued."""

    id: UUID
    agent_id: UUID
    issue_id: UUID
    runtime_id: UUID
    workspace_id: UUID
    retry_of_id: UUID
    attempt: int
