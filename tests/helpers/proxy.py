"""The front door as production has it: the web process (DEBUG off) behind nginx with
docker-compose.yml's config, both real processes on the test database; and raw HTTP clients
to attack it with."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from multica.processes import free_port
from tests.helpers.db import database_url
from tools.servers import nginx, production_env, web_process


@dataclass(frozen=True)
class FrontDoor:
    proxy: int  # nginx's port
    web: int  # the web process's own port, as if it were reachable directly


@contextmanager
def front_door(**variables: str) -> Iterator[FrontDoor]:
    """The web process (and no daphne: nothing here opens a WebSocket) behind nginx."""
    env = production_env(DATABASE_URL=database_url(), WEB_WORKERS="1", **variables)
    with web_process("web", env) as web:
        port = free_port()
        with nginx(port, web, free_port()):
            yield FrontDoor(proxy=port, web=web)


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a connection of its own: (status, headers (any case), body)."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request(method, path, body=body, headers=headers or {})
        response = client.getresponse()
        return response.status, response.headers, response.read()
    finally:
        client.close()


def at_once(count: int, call, *args) -> list:
    """`call(*args)` `count` times, all at once, each on a thread of its own; their results."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: call(*args), range(count)))
