"""Replay on ws/workspaces/<id>/events/?after=N, over real TCP against daphne: events recorded
in the outbox by this process and relayed by its real relay, read by browser-like clients."""

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from redis.asyncio import Redis

from outbox import wire
from outbox.models import Event
from outbox.prune import prune_events
from outbox.record import record
from outbox.wire import event
from tests.helpers.live_sockets import browser, daphne, events_url, until_closed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def port(django_db_setup):
    with daphne() as port:  # the default interval (30 s): no tick's catch-up hides a gap
        yield port


def recorded(workspace_id, count: int) -> None:
    """`count` events committed in one transaction, relayed after its commit."""
    with transaction.atomic():
        record(event("agent:status", workspace_id, {"n": n}) for n in range(count))


async def recorded_elsewhere(workspace_id, count: int) -> None:
    """The same from another thread and connection, as another process would."""

    def run():
        try:
            recorded(workspace_id, count)
        finally:
            connection.close()

    await asyncio.to_thread(run)


async def receive(socket, count: int) -> list[dict]:
    async with asyncio.timeout(10):
        return [json.loads(await socket.recv()) for _ in range(count)]


async def receive_through(socket, seq: int) -> list[dict]:
    """Every message up to the event `seq`."""
    messages = []
    async with asyncio.timeout(30):
        while not messages or messages[-1].get("seq", -1) < seq:
            messages.append(json.loads(await socket.recv()))
    return messages


async def nothing_more(socket) -> bool:
    try:
        async with asyncio.timeout(0.5):
            await socket.recv()
    except TimeoutError:
        return True
    return False


def seqs(messages: list[dict]) -> list[int]:
    return [m["seq"] for m in messages]


def test_without_after_the_first_message_is_the_head_then_events_follow_live(port, member):
    workspace, cookie = member
    recorded(workspace.id, 3)

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as socket:
            hello = await receive(socket, 1)
            await recorded_elsewhere(workspace.id, 2)
            return hello, await receive(socket, 2), await nothing_more(socket)

    hello, live, quiet = asyncio.run(scenario())
    assert hello == [{"type": "sync:hello", "seq": 3}]
    assert seqs(live) == [4, 5]
    assert live[0]["type"] == "agent:status"
    assert quiet


def test_a_client_that_reconnects_with_after_gets_exactly_what_it_missed(port, member):
    workspace, cookie = member

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as socket:
            await receive(socket, 1)  # hello
            await recorded_elsewhere(workspace.id, 2)
            before = await receive(socket, 2)
        # Away while more than two pages of events are recorded.
        await recorded_elsewhere(workspace.id, 1203)
        url = events_url(port, workspace.id, f"?after={before[-1]['seq']}")
        async with browser(url, cookie) as socket:
            missed = await receive(socket, 1203)
            await recorded_elsewhere(workspace.id, 1)
            return before, missed, await receive(socket, 1), await nothing_more(socket)

    before, missed, live, quiet = asyncio.run(scenario())
    assert seqs(before) == [1, 2]
    assert seqs(missed) == list(range(3, 1206))
    assert [m["payload"]["n"] for m in missed[:3]] == [0, 1, 2]
    assert seqs(live) == [1206]
    assert quiet


def test_the_switch_over_from_replay_to_live_has_no_gap_and_no_duplicate(port, member):
    """Clients connect while another thread commits events as fast as it can; each gets every
    event after its cursor exactly once, in order, whenever its replay ended."""
    workspace, cookie = member
    recorded(workspace.id, 50)
    commits, per_commit = 150, 3
    done = threading.Event()

    def writer():
        try:
            for _ in range(commits):
                recorded(workspace.id, per_commit)
        finally:
            connection.close()
            done.set()

    async def client(after: int | None, delay: float) -> list[dict]:
        await asyncio.sleep(delay)
        query = "" if after is None else f"?after={after}"
        async with browser(events_url(port, workspace.id, query), cookie) as socket:
            return await receive_through(socket, 50 + commits * per_commit)

    async def scenario():
        thread = threading.Thread(target=writer)
        thread.start()
        cursors = [(0, 0.0), (10, 0.2), (None, 0.3), (25, 0.5), (0, 0.8), (None, 1.0)]
        try:
            return await asyncio.gather(*(client(after, delay) for after, delay in cursors))
        finally:
            await asyncio.to_thread(thread.join)

    results = asyncio.run(scenario())
    head = 50 + commits * per_commit
    assert done.is_set()
    for after, messages in zip([0, 10, None, 25, 0, None], results, strict=True):
        if after is None:
            hello, *messages = messages
            assert hello["type"] == "sync:hello"
            after = hello["seq"]
        assert seqs(messages) == list(range(after + 1, head + 1)), f"after={after}"


def test_a_cursor_ahead_of_the_head_gets_sync_reset_then_events(port, member):
    workspace, cookie = member
    recorded(workspace.id, 3)

    async def scenario():
        async with browser(events_url(port, workspace.id, "?after=10"), cookie) as socket:
            reset = await receive(socket, 1)
            await recorded_elsewhere(workspace.id, 1)
            return reset, await receive(socket, 1)

    reset, live = asyncio.run(scenario())
    assert reset == [{"type": "sync:reset", "seq": 3}]
    assert seqs(live) == [4]


def test_a_cursor_older_than_the_retained_events_gets_sync_reset(port, member):
    workspace, cookie = member
    recorded(workspace.id, 5)
    recorded(workspace.id, 5)
    # The first five age past the retention and are pruned: 6 is the oldest retained.
    Event.objects.filter(seq__lte=5).update(at=Now() - timedelta(days=2))
    assert prune_events(retention=timedelta(days=1)) == 5

    async def first_messages(after: int, count: int) -> list[dict]:
        async with browser(events_url(port, workspace.id, f"?after={after}"), cookie) as socket:
            return await receive(socket, count)

    assert asyncio.run(first_messages(4, 1)) == [{"type": "sync:reset", "seq": 10}]
    assert seqs(asyncio.run(first_messages(5, 5))) == [6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    "query",
    ["?after=abc", "?after=-1", "?after=1.5", "?after=", "?after=1&after=2", "?after=" + "9" * 20],
    ids=["word", "negative", "fraction", "blank", "twice", "beyond-bigint"],
)
def test_a_bad_cursor_is_closed_with_4400_and_nothing_sent(port, member, query):
    workspace, cookie = member

    async def scenario():
        async with browser(events_url(port, workspace.id, query), cookie) as socket:
            return await until_closed(socket)

    assert asyncio.run(scenario()) == (4400, [])


def test_a_batch_the_channel_layer_lost_is_read_from_the_outbox_before_the_next(port, member):
    """As after a Redis restart or an overflowing channel: the group forgets the socket while
    two events go out, and has it back for the third."""
    workspace, cookie = member
    group = f"asgi:group:{wire.group_name(workspace.id)}"

    async def scenario():
        redis = Redis.from_url(settings.REDIS_URL)
        try:
            async with browser(events_url(port, workspace.id), cookie) as socket:
                await receive(socket, 1)  # hello: the socket is in its group
                members = await redis.zrange(group, 0, -1)
                await redis.delete(group)
                await recorded_elsewhere(workspace.id, 2)  # published to nobody
                await redis.zadd(group, {member: time.time() for member in members})
                await recorded_elsewhere(workspace.id, 1)
                return members, await receive(socket, 3), await nothing_more(socket)
        finally:
            await redis.aclose()

    members, messages, quiet = asyncio.run(scenario())
    assert len(members) == 1
    assert seqs(messages) == [1, 2, 3]
    assert quiet
