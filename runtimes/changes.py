"""What the runtimes app's steps return: the rows they changed, for results and events."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class RuntimeChange:
    id: UUID
    workspace_id: UUID


@dataclass(frozen=True)
class AgentChange:
    id: UUID
    workspace_id: UUID
    status: str
