"""The WebSocket a workspace's members listen on for the sweeper's events (spec §3).

One socket is one `WorkspaceEventsConsumer`. It is listen-only: the first frame a client sends
closes it (1008), unread. Three tasks feed one queue, which the socket's main loop takes in
order, so only that loop ever writes to the socket:
- the client's side: a frame, or the client leaving;
- the channel layer: batches of event frames for the workspace's group (outbox.wire: each
  event's message as JSON text, encoded once for every socket that sends it);
- a tick every interval: access rechecked, membership and the user's slot renewed, and a
  catch-up from the outbox.

The socket sends each event once, in `seq` order, with no gap: it joins the group before it
reads the head, so a live batch either follows its replay (and is dropped up to the last `seq`
sent) or is read from the outbox. A live event past a gap (a batch the layer lost, a Redis
restart) makes it read what is missing from the outbox first. When the channel layer fails, the
socket stays open, rejoins once it answers, and catches up.
"""

import asyncio
import json
import logging
import math
import time
from contextlib import suppress
from uuid import UUID

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from outbox.relay import BATCH_MESSAGE_TYPE
from outbox.wire import group_name
from realtime import access, closing, slots, stream

logger = logging.getLogger(__name__)

# What a channel layer that is down or restarting raises.
LAYER_ERRORS = (OSError, RedisError)
# How often a socket that lost the channel layer tries to rejoin its group.
REJOIN_EVERY_SECONDS = 1.0
# The relay publishes a step's batches before its transaction commits: a gap may take that
# long to become readable. Past it, the client is told to refetch (sync:reset).
GAP_WAIT_SECONDS = 3.0


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
        self.after: int | None = None  # the client's cursor
        self.last_seq = 0  # of the last event sent
        self.leaving = False
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
        try:
            self.after = stream.parse_after(self.scope["query_string"])
        except ValueError:
            return closing.BAD_REQUEST
        try:
            refused = await access.refusal(self.user, self.workspace_id)
            if refused:
                return refused
            return None if await self._join() else closing.TOO_MANY_SOCKETS
        except (*LAYER_ERRORS, DatabaseError) as exc:
            logger.warning("realtime.unavailable", extra={"error": repr(exc)})
            return closing.TRY_AGAIN_LATER

    async def _serve(self) -> int | None:
        sources = (self._watch_client(), self._read_layer(), self._tick())
        tasks = [asyncio.create_task(source) for source in sources]
        for task in tasks:
            task.add_done_callback(self._on_source_done)
        try:
            try:
                await self._start()
            except DatabaseError as exc:
                logger.warning("realtime.database_error", extra={"error": repr(exc)})
                return closing.TRY_AGAIN_LATER
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
            try:
                revoked = await self._handle(kind, value)
            except DatabaseError as exc:
                # What could not be read or sent is in the outbox: a later tick catches up.
                logger.warning("realtime.database_error", extra={"error": repr(exc)})
                continue
            if revoked:
                return revoked

    async def _handle(self, kind: str, value) -> int | None:
        if kind == "events":
            await self._deliver(value)
        elif kind == "rejoined":
            await self._catch_up()
        elif kind == "tick":
            revoked = await self._recheck()
            if revoked:
                return revoked
            await self._catch_up()
        return None

    # --- The stream ----------------------------------------------------------------------------

    async def _start(self) -> None:
        head = await stream.head(self.workspace_id)
        if self.after is None:
            self.last_seq = head
            await self._send_json(stream.sync(stream.HELLO, head))
        elif stream.must_reset(self.after, head, await stream.oldest(self.workspace_id)):
            await self._reset(head)
        else:
            self.last_seq = self.after
            await self._catch_up()

    async def _catch_up(self) -> None:
        """Sends, page by page, every event after the last one sent that the outbox holds."""
        while not self.leaving:
            page = await stream.page_after(self.workspace_id, self.last_seq, stream.PAGE_SIZE)
            if page and page[0]["seq"] > self.last_seq + 1:  # pruned meanwhile
                await self._reset(await stream.head(self.workspace_id))
                return
            for item in page:
                await self._send_event(item)
            if len(page) < stream.PAGE_SIZE:
                return

    async def _deliver(self, frames: list[dict]) -> None:
        for item in frames:
            seq = item["seq"]
            if seq is None:  # not of the outbox's stream (none is, today): as it came
                await self._send_text(item["text"])
                continue
            if seq > self.last_seq + 1:
                await self._fill_gap(seq - 1)
            if seq > self.last_seq:  # else sent already, from the outbox or an earlier batch
                await self._send_event(item)

    async def _fill_gap(self, until: int) -> None:
        deadline = time.monotonic() + GAP_WAIT_SECONDS
        while True:
            await self._catch_up()
            if self.last_seq >= until or self.leaving:
                return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        logger.warning("realtime.gap_unfilled", extra={"after": self.last_seq, "until": until})
        await self._reset(until)

    async def _reset(self, seq: int) -> None:
        self.last_seq = seq
        await self._send_json(stream.sync(stream.RESET, seq))

    async def _send_event(self, item: dict) -> None:
        self.last_seq = item["seq"]
        await self._send_text(item["text"])

    async def _send_json(self, message: dict) -> None:
        await self._send_text(json.dumps(message))

    async def _send_text(self, text: str) -> None:
        await self.send({"type": "websocket.send", "text": text})

    # --- Every interval ---------------------------------------------------------------------

    async def _recheck(self) -> int | None:
        """The close code if the socket's access ended; else renews its membership and slot."""
        session_key = self.scope["session"].session_key
        revoked = await access.revoked(session_key, self.user.pk, self.workspace_id)
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
        self.leaving = True  # a catch-up under way stops at its next page
        gone = message["type"] == "websocket.disconnect"
        self.inbox.put_nowait(("end", None if gone else closing.POLICY_VIOLATION))

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
