"""Listening the way a browser does: the full ASGI stack (origin check, session auth, routing)
over the real Redis channel layer, with a real Django session cookie."""

import uuid
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from multica.asgi import application
from outbox import wire
from outbox.relay import BATCH_MESSAGE_TYPE

ORIGIN = (b"origin", b"http://localhost")


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(workspace_id, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/workspaces/{workspace_id}/events/", headers)


def listen(workspace_id, cookie: str, action, count: int) -> list[dict]:
    """Connects as the session's user, runs `action` (sync: a sweep, in the test's thread and
    database connection), returns the `count` messages that arrive, and checks that nothing
    else does."""
    socket = communicator(workspace_id, cookie)

    async def scenario():
        # A layer for this event loop alone: channels-redis keeps per-loop state once a
        # receive is cancelled (a lock on the process' channel), as each socket's end does.
        channel_layers.backends.clear()
        connected, _ = await socket.connect()
        assert connected
        try:
            # First the head: what the action sends comes after it.
            assert (await socket.receive_json_from(timeout=5))["type"] == "sync:hello"
            await database_sync_to_async(action)()
            messages = [await socket.receive_json_from(timeout=5) for _ in range(count)]
            await assert_next_is_a_sentinel(workspace_id, socket)
            return messages
        finally:
            await socket.disconnect()

    return async_to_sync(scenario)()


async def assert_next_is_a_sentinel(workspace_id, socket: WebsocketCommunicator) -> None:
    """Sends a sentinel event down the same path as the sweeps' (the channel layer, to the
    workspace's group) and checks it is the next message: whatever the action sent was sent
    before it, so a surplus message would have come first, however late it was delivered."""
    sentinel = wire.event("test:sentinel", workspace_id, {"nonce": uuid.uuid4().hex})
    message = {"type": BATCH_MESSAGE_TYPE, "events": [wire.frame(sentinel)]}
    await get_channel_layer().group_send(wire.group_name(workspace_id), message)
    assert await socket.receive_json_from(timeout=5) == sentinel


def event_body(message: dict) -> dict:
    """An event without its place in the stream, once that is checked: `seq` a positive
    integer, `at` an ISO 8601 time with its zone."""
    assert isinstance(message["seq"], int), message
    assert message["seq"] > 0, message
    assert datetime.fromisoformat(message["at"]).tzinfo is not None, message
    return {k: v for k, v in message.items() if k not in ("seq", "at")}
