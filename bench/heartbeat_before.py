"""The production web process with the heartbeat as it was before the verdict guards and the
leases: the baseline that `bench.heartbeats --servers granian-before,granian` measures in the
same run as today's.

    python -m bench.heartbeat_before [--host 127.0.0.1] [--port 8000]

Then, the heartbeat was one statement in autocommit: the token check, the runtime's row lock and
its update, with no lease of its tasks, no look at the offline reason for a contradicted verdict
and no transaction around it. Everything else (routing, the token's parsing, the body's checks,
the metrics) is today's, so the difference between the two servers is the heartbeat's own.
"""

from uuid import UUID

from django.db import transaction

from common.sql import Prepared
from multica import web
from runtimes import daemons, queries
from runtimes.changes import RuntimeChange
from runtimes.daemons import Heartbeat, NotAuthenticated, NotFound

HEARTBEAT_BEFORE = Prepared(
    "runtime_heartbeat_before",
    queries.LIVE_TOKEN
    + """, old AS (
    SELECT r.id, r.status FROM agent_runtime AS r JOIN live USING (workspace_id)
    WHERE r.id = %(runtime_id)s
    FOR UPDATE OF r
), beat AS (
    UPDATE agent_runtime AS r
    SET status = 'online', last_seen_at = now(), offline_at = NULL
    FROM old
    WHERE r.id = old.id
    RETURNING r.id, old.status::text AS old_status
)
SELECT live.workspace_id, beat.id AS runtime_id, beat.old_status FROM live LEFT JOIN beat ON true
""",
)


def heartbeat_before(*, token_hash: str, runtime_id: UUID, **ignored) -> Heartbeat:
    beat = HEARTBEAT_BEFORE.fetch_one(token_hash=token_hash, runtime_id=runtime_id)
    if beat is None:
        raise NotAuthenticated("missing, invalid, expired or revoked token")
    if beat.runtime_id is None:
        raise NotFound("runtime not found")
    came_back = beat.old_status != "online"
    if came_back:  # after the beat committed, as then; events are recorded in a transaction now
        comeback = RuntimeChange(id=beat.runtime_id, workspace_id=beat.workspace_id)
        with transaction.atomic():
            daemons._announce("online", [comeback])
    return Heartbeat(came_back=came_back, contradicted=False)


def application(environ, start_response):
    """multica.wsgi's application, in a worker whose heartbeat is the one above."""
    from multica import wsgi

    daemons.heartbeat = heartbeat_before
    return wsgi.application(environ, start_response)


def main() -> None:
    args = web.arguments()
    web.run(web.server(args.host, args.port, target=f"{__name__}:application"))


if __name__ == "__main__":
    main()
