"""The daemon's side of HTTP: one keep-alive HTTP/1.1 connection, as a real daemon keeps, with
only the standard library; the simulated daemons' and the heartbeat benchmark's."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit


class HttpError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


def is_outage(exc: Exception) -> bool:
    """Whether `exc` is the platform failing (worth trying again), not an answer to act on."""
    if isinstance(exc, HttpError):
        return exc.status >= 500
    return isinstance(exc, (OSError, asyncio.IncompleteReadError))


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, base: str, token: str, timeout: float | None = None):
        url = urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.token, self.timeout = token, timeout
        self.reader = self.writer = None
        # A daemon's heartbeat and work loops share the connection, one exchange at a time.
        self.lock = asyncio.Lock()

    async def request(self, method: str, path: str, body=None) -> tuple[int, object]:
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        for attempt in (1, 2):
            try:
                async with self.lock:
                    return await self._timed_exchange(head.encode() + data)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _timed_exchange(self, payload: bytes) -> tuple[int, object]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(payload)
        except TimeoutError:
            await self.close()  # an answer arriving later would be read as the next one's
            raise

    async def _exchange(self, payload: bytes) -> tuple[int, object]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(payload)
        status_line = await self.reader.readuntil(b"\r\n")
        headers = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), _decode(body)

    async def call(self, method: str, path: str, body=None):
        status, answer = await self.request(method, path, body)
        if status >= 400:
            raise HttpError(status, answer)
        return answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _decode(body: bytes):
    try:
        return json.loads(body) if body else None
    except ValueError:  # an HTML error page from something in front of the API
        return body.decode("utf-8", "replace")
