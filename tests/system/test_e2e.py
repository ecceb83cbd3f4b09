"""End to end, with the production processes that carry a failure to a browser: Celery beat and
a worker, and daphne for the WebSocket, against the test database and Redis (with a Redis broker
of the test's own), and a browser-like WebSocket client over TCP with a session cookie. (The
HTTP side, the web process, is in multica_tests/test_web.py.)"""

import asyncio
import json
import time

import pytest
from django.db import connection
from django.db.models.functions import Now
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from runtimes.models import AgentRuntime
from tests.helpers.stack import production_stack
from tests.helpers.websockets import event_body, session_cookie
from tools.servers import redis_server

pytestmark = pytest.mark.django_db(transaction=True)

# Small thresholds, and no reconnect grace: the silent runtime's task fails as it goes offline.
SETTINGS = {
    "SWEEP_INTERVAL_SECONDS": "2",
    "RUNTIME_STALE_SECONDS": "3",
    "RUNTIME_HEARTBEAT_SECONDS": "1",
    "RUNTIME_RECONNECT_GRACE_SECONDS": "0",
    "TASK_MAX_ATTEMPTS": "1",
    "DEBUG": "1",
}


def heartbeat(runtime_id) -> None:
    """What a daemon's heartbeat does to its runtime, on a connection of its own."""
    try:
        AgentRuntime.objects.filter(pk=runtime_id).update(status="online", last_seen_at=Now())
    finally:
        connection.close()


async def listen_until_failed(url: str, cookie: str, silent, alive, task_id) -> list[dict]:
    """Listens as a member; `silent` heartbeats once (so it goes stale only now that we
    listen), `alive` keeps heartbeating; returns every event up to the task's failure."""
    headers = {"Cookie": f"sessionid={cookie}"}
    origin = "http://127.0.0.1"
    messages = []
    async with connect(url, origin=origin, additional_headers=headers, proxy=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "sync:hello"
        await asyncio.to_thread(heartbeat, silent)
        deadline = time.monotonic() + 45
        while not any(m["payload"].get("task_id") == task_id for m in messages):
            assert time.monotonic() < deadline, f"no task:failed in time; got {messages}"
            await asyncio.to_thread(heartbeat, alive)
            try:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=1)))
            except TimeoutError:
                pass
    return messages


async def close_code(url: str) -> int:
    async with connect(url, origin="http://127.0.0.1", proxy=None) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code


def test_a_silent_runtimes_task_failure_reaches_a_members_browser(
    make, django_user_model, tmp_path
):
    workspace = make.workspace()
    member = django_user_model.objects.create_user("member")
    workspace.members.add(member)
    silent = make.runtime(workspace, seen_ago=None)
    alive = make.runtime(workspace, seen_ago=None, provider="codex")
    agent = make.agent(silent, status="working")
    task = make.task(agent, status="running")
    # A broker of this run's own: beat sends to the default queue, which no other run's
    # worker may take from and nothing left over from an earlier run may be waiting in.
    with (
        redis_server() as broker,
        production_stack(tmp_path, broker.url, SETTINGS) as stack,
    ):
        port = stack.port
        url = f"ws://127.0.0.1:{port}/ws/workspaces/{workspace.id}/events/"
        assert asyncio.run(close_code(url)) == 4401
        messages = asyncio.run(
            listen_until_failed(url, session_cookie(member), silent.id, alive.id, str(task.id))
        )

    failed = event_body(messages[-1])
    error = failed["payload"].pop("error")
    assert error.startswith("runtime went offline: no heartbeat for "), error
    assert error.endswith(" s (stale 3 s + grace 0 s)"), error
    assert failed == {
        "type": "task:failed",
        "workspace_id": str(workspace.id),
        "actor_type": "system",
        "payload": {
            "task_id": str(task.id),
            "agent_id": str(agent.id),
            "issue_id": str(task.issue_id),
            "runtime_id": str(silent.id),
            "status": "failed",
            "failure_reason": "runtime_offline",
            "retry_task_id": None,
        },
    }
    assert AgentRuntime.objects.get(pk=alive.pk).status == "online"
    assert AgentRuntime.objects.get(pk=silent.pk).status == "offline"
