"""Reads for the board and the frontends' read API: who may see a workspace, and its runtimes
with their agents and live work, in one statement a page whatever the page's size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from common.sql import fetch, fetch_one
from common.states import ACTIVE

MEMBER_OF = """
SELECT 1 AS yes FROM workspace_members
WHERE workspace_id = %(workspace_id)s AND user_id = %(user_id)s
"""

WORKSPACES_OF = """
SELECT w.id, w.name FROM workspace AS w
JOIN workspace_members AS m ON m.workspace_id = w.id
WHERE m.user_id = %(user_id)s
ORDER BY w.name, w.id
"""

# A dismissed runtime stays hidden while it is the same outage: once it has come back and gone
# offline again (offline_at after the dismissal), or while it is online, it shows.
VISIBLE = """(r.dismissed_at IS NULL OR r.status = 'online' OR r.offline_at > r.dismissed_at)"""

# The unique (workspace, daemon_id, provider) index gives the page in order; agents come by
# their runtime's foreign-key index and the active count from the partial index of live work,
# a few entries a runtime on the page, never a query of its own.
RUNTIMES_PAGE = f"""
SELECT r.id, r.name, r.provider, r.daemon_id, r.device_name, r.status, r.last_seen_at,
       r.offline_at, r.created_at,
       coalesce((SELECT json_agg(json_build_object('id', a.id, 'name', a.name,
                                                   'status', a.status) ORDER BY a.name, a.id)
                 FROM agent AS a WHERE a.runtime_id = r.id), '[]') AS agents,
       (SELECT count(*) FROM agent_task AS t
        WHERE t.runtime_id = r.id AND t.status IN {ACTIVE}) AS active_tasks
FROM agent_runtime AS r
WHERE r.workspace_id = %(workspace_id)s AND {VISIBLE}
  AND (%(after_daemon)s::text IS NULL
       OR (r.daemon_id, r.provider) > (%(after_daemon)s::text, %(after_provider)s::text))
ORDER BY r.daemon_id, r.provider
LIMIT %(limit)s
"""

DB_NOW = "SELECT now() AS now"


@dataclass(frozen=True)
class RuntimeRow:
    id: UUID
    name: str
    provider: str
    daemon_id: str
    device_name: str
    status: str
    last_seen_at: datetime | None
    offline_at: datetime | None
    created_at: datetime
    agents: list[dict]
    active_tasks: int


def is_member(*, user_id: int, workspace_id: UUID) -> bool:
    return fetch_one(MEMBER_OF, user_id=user_id, workspace_id=workspace_id) is not None


def workspaces_of(*, user_id: int) -> list:
    """The workspaces the user is a member of (rows with `id`, `name`), by name."""
    return fetch(WORKSPACES_OF, user_id=user_id)


def runtimes_page(
    *, workspace_id: UUID, limit: int, after: tuple[str, str] | None = None
) -> list[RuntimeRow]:
    """Up to `limit` visible runtimes of the workspace by (daemon_id, provider), after `after`."""
    after_daemon, after_provider = after or (None, None)
    return fetch(
        RUNTIMES_PAGE,
        into=RuntimeRow,
        workspace_id=workspace_id,
        after_daemon=after_daemon,
        after_provider=after_provider,
        limit=limit,
    )


def db_now() -> datetime:
    """The database's now(): the clock every "seen N s ago" is counted by."""
    return fetch_one(DB_NOW).now
