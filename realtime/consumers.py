"""The WebSocket a workspace's members listen on for the sweeper's events (spec §3).

One socket is one `WorkspaceEventsConsumer`. It is listen-only: the first frame a client sends
closes it (1008), unread. Three tasks feed one queue, which the socket's main loop takes in
order, so only that loop ever writes to the socket:
- the client's side: a frame, or the client leaving;
- the channel layer: batches of events for the workspace's group;
- a tick every interval: access rechecked, membership and the user's slot renewed.
When the channel layer fails while open, the socket stays open and rejoins once it answers.
"""

import asyncio
import json
import logging
import math
from contextlib import suppress
from uuid import UUID

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from realtime import access, closing, slots
from realtime.receivers import BATCH_MESSAGE_TYPE, group_name

logger = logging.getLogger(__name__)

# What a channel layer that is down or restarting raises.
LAYER_ERRORS = (OSError, RedisError)
# How often a socket that lost the channel layer tries to rejoin its group.
REJOIN_EVERY_SECONDS = 1.0


class WorkspaceEventsConsumer:
    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            await cls(scope, receive, send).run()

        return app

    def __init__(self, scope, receive, send):
        self.scope, self.receive, self.send = scope, receive, send
        self.layer = get_channel_layer()
        self.user = scope["user"]
        self.inbox: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self.channel = self.group = None
        self.slot_taken = False
        # Membership must be renewed well within the group expiry, whatever the sweep interval.
        expiry = getattr(self.layer, "group_expiry", 86400)
        self.interval = min(settings.SWEEP_INTERVAL_SECONDS, expiry / 3)
        self.slot_ttl = max(1, math.ceil(3 * self.interval))

    async def run(self) -> None:
        if (await self.receive())["type"] != "websocket.connect":
            return
        try:
            # Joined before accepting: once a client is in, so is its socket.
            refused = await self._admit()
            await self.send({"type": "websocket.accept"})
            code = refused or await self._serve()
            if code is not None:  # None: the client left
                await self.send({"type": "websocket.close", "code": code})
        finally:
            await self._leave()

    async def _admit(self) -> int | None:
        """The close code for a socket that may not listen; else joins it, returning None."""
        self.workspace_id = _parse_uuid(self.scope["url_route"]["kwargs"]["workspace_id"])
        refused = await access.refusal(self.user, self.workspace_id)
        if refused:
            return refused
        try:
            return None if await self._join() else closing.TOO_MANY_SOCKETS
        except LAYER_ERRORS as exc:
            logger.warning("realtime.layer_down", extra={"error": repr(exc)})
            return closing.TRY_AGAIN_LATER

    async def _serve(self) -> int | None:
        sources = (self._watch_client(), self._read_layer(), self._tick())
        tasks = [asyncio.create_task(source) for source in sources]
        for task in tasks:
            task.add_done_callback(self._on_source_done)
        try:
            return await self._main_loop()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _join(self) -> bool:
        """Takes one of the user's slots and joins the workspace's group; False if the user
        has no slot left."""
        self.channel = await self.layer.new_channel()
        limit = settings.WEBSOCKETS_PER_USER_MAX
        if not await slots.take(
            self.layer, self.user.pk, self.channel, limit=limit, ttl=self.slot_ttl
        ):
            return False
        self.slot_taken = True
        self.group = group_name(self.workspace_id)
        await self.layer.group_add(self.group, self.channel)
        return True

    async def _leave(self) -> None:
        # With the layer down, the group forgets the channel by its expiry, the slot by its TTL.
        with suppress(*LAYER_ERRORS):
            if self.group:
                await self.layer.group_discard(self.group, self.channel)
            if self.slot_taken:
                await slots.free(self.layer, self.user.pk, self.channel)

    async def _main_loop(self) -> int | None:
        while True:
            kind, value = await self.inbox.get()
            if kind == "end":
                return value
            if kind == "crash":
                raise value
            if kind == "events":
                await self._deliver(value)
            elif kind == "tick":
                revoked = await self._recheck()
                if revoked:
                    return revoked

    async def _deliver(self, events: list[dict]) -> None:
        for item in events:
            await self.send({"type": "websocket.send", "text": json.dumps(item)})

    async def _recheck(self) -> int | None:
        """The close code if the socket's access ended; else renews its membership and slot."""
        session_key = self.scope["session"].session_key
        try:
            revoked = await access.revoked(session_key, self.user.pk, self.workspace_id)
        except DatabaseError as exc:
            # Nothing is published without the database either: judged again next tick.
            logger.warning("realtime.recheck_failed", extra={"error": repr(exc)})
            return None
        if revoked:
            return revoked
        with suppress(*LAYER_ERRORS):  # the reader notices a dead layer, and rejoins
            await self.layer.group_add(self.group, self.channel)
            await slots.renew(self.layer, self.user.pk, self.channel, ttl=self.slot_ttl)
        return None

    def _on_source_done(self, task: asyncio.Task) -> None:
        # A source ends by itself only on a bug: the socket must not go on deaf.
        if not task.cancelled() and task.exception():
            self.inbox.put_nowait(("crash", task.exception()))

    # --- The three sources ---------------------------------------------------------------------

    async def _watch_client(self) -> None:
        # Listen-only: one frame is enough to close, and it is never decoded.
        message = await self.receive()
        leaving = message["type"] == "websocket.disconnect"
        self.inbox.put_nowait(("end", None if leaving else closing.POLICY_VIOLATION))

    async def _read_layer(self) -> None:
        # One reader for the socket's whole life: channels-redis drops the messages it had
        # buffered for a channel when a receive on it is cancelled.
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except LAYER_ERRORS as exc:
                logger.warning("realtime.layer_lost", extra={"error": repr(exc)})
                await self._rejoin()
                continue
            if message.get("type") == BATCH_MESSAGE_TYPE:
                self.inbox.put_nowait(("events", message["events"]))

    async def _rejoin(self) -> None:
        # A restarted Redis has forgotten every group: back in before reading on.
        while True:
            await asyncio.sleep(REJOIN_EVERY_SECONDS)
            with suppress(*LAYER_ERRORS):
                await self.layer.group_add(self.group, self.channel)
                self.inbox.put_nowait(("rejoined", None))
                return

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.inbox.put_nowait(("tick", None))


async def not_found(scope, receive, send) -> None:
    """Any other path: closed with 4404, where the router would answer HTTP 500."""
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": closing.NOT_FOUND})


def _parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
