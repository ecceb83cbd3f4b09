"""Snapshot, then stream: the `seq` a read API answer carries is where the socket takes over,
so a client that opens `?after=<seq>` gets every change made since its snapshot, and none
from before it."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db.models.functions import Now
from django.test import Client

from multica.asgi import application
from outbox.replay import head_seq
from tests.helpers.websockets import ORIGIN, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_snapshots_seq_is_where_the_socket_takes_over(make, django_user_model):
    member = django_user_model.objects.create_user("member")
    workspace = make.workspace()
    workspace.members.add(member)
    gone = make.runtime(workspace, status="offline", seen_ago=600)
    failed = make.task(
        make.agent(make.runtime(workspace)), status="failed", failure_reason="timeout",
        completed_at=Now(),
    )  # fmt: skip
    browser = Client()
    browser.force_login(member)
    api = f"/api/workspaces/{workspace.id}"

    browser.post(f"{api}/runtimes/{gone.id}/dismiss")  # before the snapshot: in it
    snapshot = browser.get(f"{api}/runtimes").json()
    assert snapshot["seq"] == head_seq(workspace.id) >= 1
    assert browser.get(f"{api}/tasks").json()["seq"] == snapshot["seq"]
    assert str(gone.id) not in {r["id"] for r in snapshot["runtimes"]}
    browser.post(f"{api}/tasks/{failed.id}/retry")  # after it: on the stream

    messages = async_to_sync(replay)(workspace.id, session_cookie(member), snapshot["seq"])
    assert [(m["seq"], m["type"]) for m in messages] == [(snapshot["seq"] + 1, "task:queued")]
    assert messages[0]["payload"]["retry_of"] == str(failed.id)


async def replay(workspace_id, cookie: str, after: int) -> list[dict]:
    """What a socket opened with ?after= sends: every message up to a second of silence."""
    channel_layers.backends.clear()
    headers = [ORIGIN, (b"cookie", f"sessionid={cookie}".encode())]
    path = f"/ws/workspaces/{workspace_id}/events/?after={after}"
    socket = WebsocketCommunicator(application, path, headers)
    connected, _ = await socket.connect()
    assert connected
    messages = []
    try:
        while not await socket.receive_nothing(timeout=1):
            messages.append(await socket.receive_json_from())
        return messages
    finally:
        await socket.disconnect()
