"""Reads for the board and the frontends' read API: a workspace's tasks, newest first, a page
at a time from the index that serves the filter (see AgentTask.Meta.indexes), with the names
of their agents and runtimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from common.sql import fetch, sql_list

# The page is picked from the index alone (ids and sort keys), then only its rows are read and
# named, by primary-key probes: a sorted filter (several statuses) sorts index entries, not
# rows with their names, and a join could let the planner hash every agent and runtime.
TASKS_PAGE = """
WITH page AS MATERIALIZED (
    SELECT t.id, t.{key} AS sort_at FROM agent_task AS t
    WHERE t.workspace_id = %(workspace_id)s{filters}
      AND (%(after_at)s::timestamptz IS NULL
           OR (t.{key}, t.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
    ORDER BY t.{key} DESC, t.id DESC
    LIMIT %(limit)s
)
SELECT t.id, t.status, t.failure_reason, t.error, t.issue_id, t.priority, t.attempt,
       t.max_attempts, t.retry_of_id, t.created_at, t.dispatched_at, t.started_at,
       t.completed_at, page.sort_at, t.agent_id,
       (SELECT a.name FROM agent AS a WHERE a.id = t.agent_id) AS agent_name, t.runtime_id,
       (SELECT r.name FROM agent_runtime AS r WHERE r.id = t.runtime_id) AS runtime_name,
       (SELECT n.id FROM agent_task AS n WHERE n.retry_of_id = t.id) AS retry_id
FROM page JOIN agent_task AS t ON t.id = page.id
ORDER BY page.sort_at DESC, page.id DESC
"""


@dataclass(frozen=True)
class TaskRow:
    id: UUID
    status: str
    failure_reason: str
    error: str
    issue_id: UUID
    priority: int
    attempt: int
    max_attempts: int | None
    retry_of_id: UUID | None
    created_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    sort_at: datetime | None
    agent_id: UUID
    agent_name: str
    runtime_id: UUID | None
    runtime_name: str | None
    retry_id: UUID | None


def orders_by_failure(*, statuses: tuple[str, ...], failure_reason: str) -> bool:
    """Failures are listed by when they failed; anything else by when it was made."""
    return bool(failure_reason) or statuses == ("failed",)


def tasks_page_sql(*, statuses: tuple[str, ...], failure_reason: str) -> str:
    """The statement of `tasks_page` for this filter. Statuses and reason must be valid names:
    they are written into the statement, so that the planner matches the partial indexes."""
    by_failure = orders_by_failure(statuses=statuses, failure_reason=failure_reason)
    filters = ""
    if by_failure:
        # Only failed tasks carry a reason: the partial index of failures serves both.
        filters += " AND t.status = 'failed'"
        statuses = tuple(s for s in statuses if s != "failed")
    if statuses:
        filters += f" AND t.status IN {sql_list(statuses)}"
    if failure_reason:
        filters += f" AND t.failure_reason IN {sql_list((failure_reason,))}"
    return TASKS_PAGE.format(key="completed_at" if by_failure else "created_at", filters=filters)


def tasks_page(
    *,
    workspace_id: UUID,
    statuses: tuple[str, ...] = (),
    failure_reason: str = "",
    limit: int,
    after: tuple[datetime, UUID] | None = None,
) -> list[TaskRow]:
    """Up to `limit` of the workspace's tasks in `statuses` (all if empty) and of
    `failure_reason` (any if blank), newest first (see `orders_by_failure`), after `after`
    (the last row's `sort_at` and `id`)."""
    after_at, after_id = after or (None, None)
    return fetch(
        tasks_page_sql(statuses=statuses, failure_reason=failure_reason),
        into=TaskRow,
        workspace_id=workspace_id,
        after_at=after_at,
        after_id=after_id,
        limit=limit,
    )
