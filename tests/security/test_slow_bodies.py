"""Slow bodies: clients that send a request's headers and then its body a trickle at a time,
to hold the web process's few threads. Against the web process directly and through the
proxy, real processes, real sockets."""

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from multica import web
from runtimes.tokens import issue_token
from tests.helpers.proxy import front_door
from tools.servers import daemon_post, nginx_binary

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_CLIENTS = 200


@contextmanager
def slow_bodies(port: int, count: int, token: str | None) -> Iterator[list[socket.socket]]:
    """`count` connections, each having sent a heartbeat's headers (announcing a 64 KiB body)
    and its first byte, and nothing more, until the block ends."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        "POST /api/daemon/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"{auth}Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n{{"
    ).encode()
    sockets = []
    try:
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(head)
            sockets.append(client)
        yield sockets
    finally:
        for client in sockets:
            client.close()


def heartbeats_answered(port: int, runtime, token: str, count: int = 10) -> list[int]:
    body = json.dumps({"runtime_id": str(runtime.id)}).encode()
    return [daemon_post(port, "/api/daemon/heartbeat", body, token)[0] for _ in range(count)]


def test_the_web_process_listens_on_loopback_unless_told_otherwise():
    assert web.arguments([]).host == "127.0.0.1"


def test_slow_bodies_without_a_token_hold_no_thread_of_the_web_process(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    with front_door(WEB_THREADS="2") as door, slow_bodies(door.web, SLOW_CLIENTS, None) as slow:
        # Each is refused on its headers, before its body is waited for.
        answers = [client.recv(64) for client in slow[:20]]
        statuses = heartbeats_answered(door.web, runtime, token)

    assert all(answer.startswith(b"HTTP/1.1 401") for answer in answers), answers[:3]
    assert statuses == [200] * 10


@pytest.mark.skipif(not nginx_binary(), reason="nginx is not installed (.ci/run installs it)")
def test_through_the_proxy_slow_bodies_with_a_live_token_hold_no_thread(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    # Two threads, a hundred times as many slow clients, each with the live token: only the
    # proxy's reading the bodies whole keeps them off the threads.
    with front_door(WEB_THREADS="2") as door, slow_bodies(door.proxy, SLOW_CLIENTS, token):
        statuses = heartbeats_answered(door.proxy, runtime, token)

    assert statuses == [200] * 10


@pytest.mark.skipif(not nginx_binary(), reason="nginx is not installed (.ci/run installs it)")
def test_the_proxy_drops_a_body_that_stops_arriving(make):
    token = issue_token(workspace=make.workspace())[1]
    with front_door() as door, slow_bodies(door.proxy, 1, token) as [client]:
        client.settimeout(30)
        started = time.monotonic()
        answer = client.recv(64)
        waited = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 408") or answer == b""
    assert waited < 15  # nginx's client_body_timeout (10 s), not its default minute
