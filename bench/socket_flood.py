"""A client flooding the workspace socket with frames: its cost to daphne, and how soon it is shut.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m bench.socket_flood [--frames N]

A real daphne serves multica.asgi; a real WebSocket client, logged in as a member, sends
`--frames` frames of 1 KB as fast as it can, without reading, for at most --seconds. Measured:
daphne's resident memory before, right after, and 2 s after; how many frames the client got
out before the server closed; and the close code. The baseline, in the same run, is the same
client connected and sending nothing. Works only in its own database, `<name>_bench_flood` on
the DATABASE_URL server, created, migrated and dropped at the end unless --keep.
"""

import asyncio
import json
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.common import arguments, django_database, serving

# Valid JSON: what a consumer that decodes frames decodes without failing on the first.
FRAME = json.dumps({"pad": "x" * 1012})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def member_cookie() -> tuple[str, str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runtimes.models import Workspace

    workspace = Workspace.objects.create(name="flood")
    user = get_user_model().objects.create_user("flooder")
    workspace.members.add(user)
    client = Client()
    client.force_login(user)
    return str(workspace.id), client.cookies["sessionid"].value


async def flood(url: str, cookie: str, frames: int, seconds: float) -> tuple[int, int | None]:
    """(frames sent before the server closed, its close code; None if it never did)."""
    headers = {"Cookie": f"sessionid={cookie}"}
    async with connect(url, origin="http://127.0.0.1", additional_headers=headers) as ws:
        await asyncio.sleep(0.5)  # accepted and joined
        deadline = time.monotonic() + seconds
        sent = 0
        try:
            while sent < frames and time.monotonic() < deadline:
                await ws.send(FRAME)
                sent += 1
            # Until the close, if the server closes; an idle client just waits a second.
            while True:
                await asyncio.wait_for(ws.recv(), timeout=seconds if frames else 1)
        except (ConnectionClosed, TimeoutError):
            pass
        return sent, ws.close_code


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with django_database("_bench_flood", keep=args.keep):
        workspace_id, cookie = member_cookie()
        with serving("ws") as (daphne, port):
            url = f"ws://127.0.0.1:{port}/ws/workspaces/{workspace_id}/events/"
            rows = []
            cases = (("idle client (baseline)", 0), ("flood of 1 KB frames", args.frames))
            for name, frames in cases:
                before = rss_mb(daphne.pid)
                sent, code = asyncio.run(flood(url, cookie, frames, args.seconds))
                right_after = rss_mb(daphne.pid)
                time.sleep(2)
                rows.append((name, sent, code, before, right_after, rss_mb(daphne.pid)))
    print(f"{'client':<24} {'frames out':>10} {'close':>6} {'RSS MB before':>14}"
          f" {'after':>7} {'+2 s':>7}")  # fmt: skip
    for name, sent, code, before, after, later in rows:
        print(f"{name:<24} {sent:>10} {code!s:>6} {before:>14.1f} {after:>7.1f} {later:>7.1f}")


if __name__ == "__main__":
    main()
