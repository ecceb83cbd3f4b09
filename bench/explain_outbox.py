"""Every outbox statement EXPLAINed at two sizes of history (published events of many
workspaces), with the same live work: a chunk of new events, a backlog of unpublished ones.
A statement whose cost grows with history reads more at the larger size.

    DATABASE_URL=... python -m bench.explain_outbox [--sizes 100000,1000000] [--plans] [--keep]

Works only in its own database, `<name>_bench_explain_outbox`, which it creates, fills and drops.
"""

import json
import uuid
from datetime import timedelta

from django.db import transaction

from bench.explain import blocks, explain_at_sizes
from common.sql import fetch
from outbox import queries

WORKSPACES = 100
NEW = 1000  # a mass outage's chunk, recorded and not yet numbered
# Published history, spread over workspaces and the last day, seq per workspace.
HISTORY = """
INSERT INTO outbox_event (workspace_id, seq, type, actor_type, payload, at, published_at)
SELECT md5('ws' || mod(k, %(workspaces)s))::uuid, k / %(workspaces)s + 1, 'agent:status',
       'system', '{"agent_id": "x", "status": "idle"}',
       now() - interval '20 hours' * (1 - k::float / %(size)s), now()
FROM generate_series(0, %(size)s - 1) AS k;
INSERT INTO outbox_head (workspace_id, seq)
SELECT workspace_id, max(seq) FROM outbox_event GROUP BY workspace_id
"""


def statements(workspace_id: str, head: int) -> dict[str, tuple[str, dict]]:
    payloads = [json.dumps({"agent_id": str(uuid.uuid4()), "status": "idle"})] * NEW
    return {
        "RECORD (a chunk)": (
            queries.RECORD,
            {
                "workspace_ids": [workspace_id] * NEW,
                "types": ["agent:status"] * NEW,
                "actor_types": ["system"] * NEW,
                "payloads": payloads,
            },
        ),
        "ANY_NEW": (queries.ANY_NEW, {}),
        "NUMBER_NEW": (queries.NUMBER_NEW, {"limit": 5000}),
        "UNPUBLISHED": (queries.UNPUBLISHED, {"limit": 5000}),
        "HEAD_SEQ": (queries.HEAD_SEQ, {"workspace_id": workspace_id}),
        "OLDEST_SEQ": (queries.OLDEST_SEQ, {"workspace_id": workspace_id}),
        "EVENTS_AFTER (a page near the head)": (
            queries.EVENTS_AFTER,
            {"workspace_id": workspace_id, "after": head - 500, "limit": 500},
        ),
        "PRUNE (nothing due)": (queries.PRUNE, {"retention": timedelta(days=1), "limit": 5000}),
        "LAG (admin)": (queries.LAG, {}),
    }


def measure(size: int, show: bool) -> dict[str, tuple[int, float]]:
    fetch("TRUNCATE outbox_event, outbox_head")
    fetch(HISTORY, size=size, workspaces=WORKSPACES)
    fetch("VACUUM ANALYZE outbox_event, outbox_head")
    head = fetch("SELECT workspace_id, seq FROM outbox_head ORDER BY workspace_id LIMIT 1")[0]
    workspace_id = str(head.workspace_id)
    out = {}
    with transaction.atomic():
        # The live work: a chunk recorded, and a backlog numbered but not published.
        live = statements(workspace_id, head.seq)
        fetch(live["RECORD (a chunk)"][0], **live["RECORD (a chunk)"][1])
        fetch(
            "UPDATE outbox_event SET published_at = NULL WHERE id IN"
            " (SELECT id FROM outbox_event WHERE seq IS NOT NULL ORDER BY id DESC LIMIT 500)"
        )
        for name, (sql, params) in live.items():
            with transaction.atomic():
                out[name] = blocks(sql, params, show)
                transaction.set_rollback(True)
        transaction.set_rollback(True)
    return out


def main() -> None:
    suffix, sizes = "_bench_explain_outbox", "100000,1000000"
    explain_at_sizes(__doc__, suffix, sizes, measure, title="statement", unit="ev")


if __name__ == "__main__":
    main()
