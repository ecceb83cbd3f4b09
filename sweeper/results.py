"""What a sweep returns: every row it changed, over all its chunks."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtimes.changes import AgentChange, RuntimeChange
from tasks.changes import FailedTask

# Rows per transaction. A thousand runtimes (and their few active tasks each) commit in tens of
# milliseconds, so a mass outage of 10,000 runtimes holds no lock for long and no more than a
# chunk of rows in memory, while an ordinary sweep still fits in one chunk.
CHUNK_SIZE = 1000


@dataclass
class SweepResult:
    runtimes_marked_offline: list[RuntimeChange] = field(default_factory=list)
    tasks_failed: list[FailedTask] = field(default_factory=list)
    agents_changed: list[AgentChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runtimes_marked_offline or self.tasks_failed or self.agents_changed)

    def add(self, other: SweepResult) -> SweepResult:
        self.runtimes_marked_offline += other.runtimes_marked_offline
        self.tasks_failed += other.tasks_failed
        self.agents_changed += other.agents_changed
        return self

    def counts(self) -> dict[str, int]:
        """How many rows of each kind changed: what `sweep.done` logs."""
        return {
            "runtimes_offline": len(self.runtimes_marked_offline),
            "tasks_failed": len(self.tasks_failed),
            "agents_idle": len(self.agents_changed),
        }
