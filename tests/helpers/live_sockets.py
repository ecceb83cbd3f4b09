"""Listening over real TCP: daphne serving the product's ASGI application on the test database,
and a browser-like WebSocket client with a session cookie."""

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers.db import database_url
from tools.servers import web_process


def daphne_env(**variables: str) -> dict:
    """The environment of a daphne on the test database, with `variables`."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "1",
        # The session cookies are signed with the tests' key; daphne must check them with it.
        "SECRET_KEY": settings.SECRET_KEY,
        **variables,
    }


@contextmanager
def daphne(**variables: str) -> Iterator[int]:
    """daphne on the test database with `variables` in its environment; yields its port. Its
    output is printed at the end, to go with a failure."""
    with web_process("ws", daphne_env(**variables)) as port:
        yield port


def events_url(port: int, workspace_id, query: str = "") -> str:
    return f"ws://127.0.0.1:{port}/ws/workspaces/{workspace_id}/events/{query}"


def browser(url: str, cookie: str | None = None):
    """A browser-like client: an Origin the server allows, the session cookie if any."""
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    return connect(url, origin="http://127.0.0.1", additional_headers=headers, proxy=None)


async def until_closed(socket, timeout: float = 10) -> tuple[int, list[dict]]:
    """Reads `socket` until the server closes it: (close code, the JSON messages before)."""
    messages = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                messages.append(json.loads(await socket.recv()))
        except ConnectionClosed as closed:
            return closed.rcvd.code, messages


async def close_code(url: str, cookie: str | None = None) -> int:
    async with browser(url, cookie) as socket:
        return (await until_closed(socket))[0]
