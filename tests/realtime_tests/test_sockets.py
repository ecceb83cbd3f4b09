"""The workspace socket as a browser meets it over real TCP, against daphne on the test database
and the real Redis channel layer: what it refuses and how it closes (README, "Events over the
WebSocket")."""

import asyncio
import json
import uuid

import pytest
from channels.layers import get_channel_layer
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection

from outbox import wire
from outbox.relay import BATCH_MESSAGE_TYPE
from tests.helpers.live_sockets import (
    browser,
    close_code,
    daphne,
    daphne_env,
    events_url,
    until_closed,
)
from tests.helpers.websockets import session_cookie
from tools.servers import redis_server, start, stop, wait_for_http

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 3
SETTINGS = {
    # Rechecks every second, and a group expiry that a test can wait out.
    "SWEEP_INTERVAL_SECONDS": "1",
    "CHANNEL_GROUP_EXPIRY_SECONDS": "3",
    "WEBSOCKETS_PER_USER_MAX": str(LIMIT),
}


@pytest.fixture(scope="module")
def port(django_db_setup):
    with daphne(**SETTINGS) as port:
        yield port


@pytest.fixture
def member(make, django_user_model):
    """(workspace, user, session cookie) of a logged-in member."""
    workspace = make.workspace()
    user = django_user_model.objects.create_user(f"member-{uuid.uuid4().hex[:8]}", password="p")
    workspace.members.add(user)
    return workspace, user, session_cookie(user)


async def in_thread(action) -> None:
    """Runs `action` (ORM work) on a thread and connection of its own, as another process
    would."""

    def run():
        try:
            action()
        finally:
            connection.close()

    await asyncio.to_thread(run)


async def publish(workspace_id, nonce: str) -> None:
    """One event down the sweeps' path: the channel layer, to the workspace's group."""
    item = wire.event("test:ping", workspace_id, {"nonce": nonce})
    message = {"type": BATCH_MESSAGE_TYPE, "events": [wire.frame(item)]}
    await get_channel_layer().group_send(wire.group_name(workspace_id), message)


async def hears(socket, workspace_id) -> bool:
    """Whether an event published now reaches `socket` (other messages are skipped: a socket
    is in its group once accepted)."""
    nonce = uuid.uuid4().hex
    await publish(workspace_id, nonce)
    try:
        async with asyncio.timeout(3):
            while json.loads(await socket.recv()).get("payload") != {"nonce": nonce}:
                pass
    except TimeoutError:
        return False
    return True


# --- Listen-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["{}", "not json", b"\x00\x01"], ids=["json", "text", "binary"])
def test_a_client_that_sends_anything_is_closed_with_1008(port, member, frame):
    workspace, _, cookie = member

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as socket:
            await socket.send(frame)
            return await until_closed(socket)

    code, _ = asyncio.run(scenario())
    assert code == 1008


def test_a_flood_of_frames_is_closed_with_1008_and_the_server_still_serves(port, member):
    workspace, _, cookie = member
    frame = "x" * 1024

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as flooder:
            for _ in range(2000):
                await flooder.send(frame)
            closed = await until_closed(flooder)
        async with browser(events_url(port, workspace.id), cookie) as listener:
            return closed[0], await hears(listener, workspace.id)

    assert asyncio.run(scenario()) == (1008, True)


# --- Paths, the channel layer ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/nowhere/", "/ws/workspaces/x/events/more/", "/"])
def test_an_unrouted_path_is_closed_with_4404(port, path):
    assert asyncio.run(close_code(f"ws://127.0.0.1:{port}{path}")) == 4404


def test_with_the_channel_layer_down_the_handshake_is_accepted_and_closed_with_1013(member):
    workspace, _, cookie = member
    with redis_server() as redis, daphne(**SETTINGS, REDIS_URL=redis.url) as port:
        redis.stop()
        assert asyncio.run(close_code(events_url(port, workspace.id), cookie)) == 1013


def test_a_live_socket_outlives_the_channel_layers_group_expiry(port, member):
    workspace, _, cookie = member

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as socket:
            assert await hears(socket, workspace.id)
            await asyncio.sleep(5)  # the group expires 3 s after its last renewal
            return await hears(socket, workspace.id)

    assert asyncio.run(scenario())


# --- Sockets per user ---------------------------------------------------------------------------


def test_sockets_past_the_per_user_limit_are_closed_with_4429(port, member):
    workspace, _, cookie = member
    url = events_url(port, workspace.id)

    async def scenario():
        sockets = [await browser(url, cookie) for _ in range(LIMIT)]
        try:
            assert all([await hears(socket, workspace.id) for socket in sockets])
            refused = await close_code(url, cookie)
            await sockets.pop().close()
            await asyncio.sleep(0.5)  # the server frees the slot on hearing the close
            async with browser(url, cookie) as again:
                return refused, await hears(again, workspace.id)
        finally:
            for socket in sockets:
                await socket.close()

    assert asyncio.run(scenario()) == (4429, True)


def test_a_killed_servers_slots_lapse_after_a_few_intervals(member):
    workspace, _, cookie = member
    killed, first = start("ws", daphne_env(**SETTINGS))

    async def scenario(second):
        wait_for_http(first, killed)
        sockets = [await browser(events_url(first, workspace.id), cookie) for _ in range(LIMIT)]
        assert all([await hears(socket, workspace.id) for socket in sockets])
        killed.kill()  # no close frees the slots of its sockets
        killed.wait()
        for socket in sockets:
            await socket.close()
        url = events_url(second, workspace.id)
        refused = await close_code(url, cookie)
        await asyncio.sleep(4)  # a slot lapses 3 intervals after its last renewal
        async with browser(url, cookie) as socket:
            return refused, await hears(socket, workspace.id)

    try:
        with daphne(**SETTINGS) as second:
            assert asyncio.run(scenario(second)) == (4429, True)
    finally:
        stop(killed)


# --- Access rechecked while open ------------------------------------------------------------------


def removed(workspace, user, cookie):
    return lambda: workspace.members.remove(user)


def logged_out(workspace, user, cookie):
    # What logout does to the request's session.
    return lambda: SessionStore(session_key=cookie).flush()


def password_changed(workspace, user, cookie):
    def change():
        user.set_password("another password")
        user.save()

    return change


@pytest.mark.parametrize(
    ("change", "code"), [(removed, 4403), (logged_out, 4401), (password_changed, 4401)]
)
def test_a_socket_that_lost_its_access_is_closed_within_the_sweep_interval(
    port, member, change, code
):
    workspace, user, cookie = member

    async def scenario():
        async with browser(events_url(port, workspace.id), cookie) as socket:
            assert await hears(socket, workspace.id)
            await in_thread(change(workspace, user, cookie))
            # SWEEP_INTERVAL_SECONDS is 1; the rest is slack for a busy machine.
            return (await until_closed(socket, timeout=4))[0]

    assert asyncio.run(scenario()) == code
