"""The outbox as tests drive it: the relay's lock held by another session (as a relay running
in another process holds it), a channel layer on a Redis of the test's own, and a listener on
a workspace's group that sees exactly what the relay published."""

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from channels.layers import channel_layers
from django.db import connections
from django.test import override_settings

from outbox import relay, replay
from outbox.wire import group_name, message_of


@contextmanager
def relay_held_elsewhere() -> Iterator[None]:
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [relay.LOCK_SPACE, relay.LOCK_KEY]
            )
        yield
        other.rollback()
    finally:
        other.close()


@contextmanager
def channel_layer_at(port: int) -> Iterator[None]:
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": None}],
                "capacity": 1000,
            },
        }
    }
    # channels drops its cached layer when CHANNEL_LAYERS changes.
    with override_settings(CHANNEL_LAYERS=layers):
        yield


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung Redis."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@contextmanager
def group_listener(workspace_id) -> Iterator["GroupListener"]:
    with asyncio.Runner() as runner:
        yield GroupListener(workspace_id, runner)


class GroupListener:
    """A channel in a workspace's group, as a consumer's is, on an event loop of its own (the
    channel layer's receive buffers belong to the loop that made them, and so a layer of its own:
    the shared one keeps locks bound to the loops of earlier tests)."""

    def __init__(self, workspace_id, runner: asyncio.Runner):
        self.group = group_name(workspace_id)
        self.runner = runner
        self.layer = channel_layers.make_backend("default")
        self.channel = runner.run(self.layer.new_channel())
        self.join()

    def join(self) -> None:
        """(Again, after a Redis restart lost the group.)"""
        self.runner.run(self.layer.group_add(self.group, self.channel))

    def events(self, count: int, timeout: float = 10) -> list[dict]:
        """The next `count` events, from as many batches as they came in."""
        return self.runner.run(self._events(count, timeout))

    def messages_left(self, timeout: float = 0.3) -> int:
        try:
            self.events(1, timeout)
        except TimeoutError:
            return 0
        return 1

    async def _events(self, count: int, timeout: float) -> list[dict]:
        events = []
        async with asyncio.timeout(timeout):
            while len(events) < count:
                message = await self.layer.receive(self.channel)
                assert message["type"] == relay.BATCH_MESSAGE_TYPE
                events += [message_of(item) for item in message["events"]]
        return events


def replayed(workspace_id, after: int, limit: int) -> list[dict]:
    """The messages `replay.events_after` gives a socket to send, each checked to carry the
    `seq` its frame is ordered by."""
    frames = replay.events_after(workspace_id, after, limit)
    messages = [message_of(item) for item in frames]
    assert [m["seq"] for m in messages] == [item["seq"] for item in frames]
    return messages
