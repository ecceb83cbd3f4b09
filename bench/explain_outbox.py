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
INSERT INTO outbox_event (workspace_id, seq, type, actor_type, payload, at)
SELECT md5('ws' || mod(k, %(workspaces)s))::uuid, k / %(workspaces)s + 1, 'agent:status',
       'system', '{"agent_id": "x", "status": "idle"}',
       now() - interval '20 hours' * (1 - k::float / %(size)s)
FROM generate_series(0, %(size)s - 1) AS k;
INSERT INTO outbox_head (workspace_id, seq, published_seq)
SELECT workspace_id, max(seq), max(seq) FROM outbox_event GROUP BY workspace_id
"""


def statements(workspace_ids: list[str], head: int) -> dict[str, tuple[str, dict]]:
    workspace_id = workspace_ids[0]
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
        "PENDING": (queries.PENDING, {}),
        "UNPUBLISHED": (queries.UNPUBLISHED, {"limit": 5000}),
        "MARK_PUBLISHED (every workspace)": (
            queries.MARK_PUBLISHED,
            {"workspace_ids": workspace_ids, "seqs": [head] * len(workspace_ids)},
        ),
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
    heads = fetch("SELECT workspace_id, seq FROM outbox_head ORDER BY workspace_id")
    out = {}
    with transaction.atomic():
        # The live work: a chunk recorded, and a backlog numbered but not published.
        live = statements([str(h.workspace_id) for h in heads], heads[0].seq)
        fetch(live["RECORD (a chunk)"][0], **live["RECORD (a chunk)"][1])
        fetch("UPDATE outbox_head SET published_seq = seq - %(behind)s", behind=500 // WORKSPACES)
        # The admin's "not yet" filter, a page of it, newest first.
        from outbox.models import Event  # models need django.setup() first

        page = Event.objects.unpublished().order_by("-id")[:100]
        live["admin: not yet published (a page)"] = page.query.sql_with_params()
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
