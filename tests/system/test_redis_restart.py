"""A member's socket, over real TCP to daphne, across a restart of the channel layer's Redis (a
server of the test's own) while sweeps go on committing: RabbitMQ is the broker, so a real
Celery worker keeps sweeping with Redis down. The socket stays open, and gets every event once,
in order, once Redis is back."""

import asyncio
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.test import override_settings

from outbox.models import Head
from realtime.tasks import relay_events
from runtimes.models import AgentRuntime
from sweeper.tasks import sweep_stale_runtimes
from tests.helpers.live_sockets import browser, daphne, events_url, receive_through
from tests.helpers.outbox import channel_layer_at
from tests.helpers.websockets import session_cookie
from tests.helpers.workers import RABBITMQ_URL, app_on, wait_until, worker
from tools.servers import redis_server

pytestmark = pytest.mark.django_db(transaction=True)

RUNTIMES, SWEEPS = 100, 2
# No reconnect grace: a task fails as its runtime goes offline. No brake: all of a small
# fleet going silent at once is the point here, not an outage to hold.
RULES = {"RUNTIME_RECONNECT_GRACE_SECONDS": 0, "SWEEP_BRAKE_MIN_RUNTIMES": 100_000}


def in_thread(action):
    def run():
        try:
            return action()
        finally:
            connection.close()

    return asyncio.to_thread(run)


def go_silent(runtime_ids) -> None:
    AgentRuntime.objects.filter(pk__in=runtime_ids).update(
        last_seen_at=Now() - timedelta(seconds=120)
    )


def offline(runtime_ids) -> bool:
    try:
        return not AgentRuntime.objects.filter(pk__in=runtime_ids, status="online").exists()
    finally:
        connection.close()


def test_a_socket_stays_open_across_a_redis_restart_and_gets_every_event_in_order(
    make, django_user_model
):
    workspace = make.workspace()
    member = django_user_model.objects.create_user("member")
    workspace.members.add(member)
    cookie = session_cookie(member)
    runtimes = [make.runtime(workspace) for _ in range(RUNTIMES)]
    for runtime in runtimes:
        make.task(make.agent(runtime, status="working"), status="running")
    halves = [[r.id for r in runtimes[i::SWEEPS]] for i in range(SWEEPS)]

    with (
        redis_server() as redis,
        channel_layer_at(redis.port),
        override_settings(**RULES),
        app_on(RABBITMQ_URL) as app,
        worker(app),
        daphne(REDIS_URL=redis.url) as port,
    ):

        async def scenario():
            async with browser(events_url(port, workspace.id), cookie) as socket:
                hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
                redis.stop()
                for half in halves:  # each sweep commits while Redis is down
                    await in_thread(lambda half=half: go_silent(half))
                    app.send_task(sweep_stale_runtimes.name)
                    await asyncio.to_thread(wait_until, lambda half=half: offline(half))
                head = await in_thread(lambda: Head.objects.get(workspace_id=workspace.id).seq)
                redis.start()
                app.send_task(relay_events.name)  # beat's catch-up
                messages = await receive_through(socket, head)
                try:
                    async with asyncio.timeout(1):
                        extra = await socket.recv()
                except TimeoutError:
                    extra = None
                return hello, head, messages, extra, socket.close_code

        hello, head, messages, extra, close_code = asyncio.run(scenario())

    assert hello == {"type": "sync:hello", "seq": 0}
    assert close_code is None, "the socket stayed open"
    assert [m["seq"] for m in messages] == list(range(1, head + 1))
    counts = {}
    for message in messages:
        counts[message["type"]] = counts.get(message["type"], 0) + 1
    assert counts == {"task:failed": RUNTIMES, "agent:status": RUNTIMES, "daemon:register": SWEEPS}
    assert extra is None, "no duplicate after the catch-up"
