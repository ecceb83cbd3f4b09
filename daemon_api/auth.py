"""Who is calling: a workspace's daemon, by its bearer token, checked before anything else of
the request is read."""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

from django.http import HttpRequest

from runtimes.tokens import authenticate, hash_token

# How long a token this process found live lets a request through without a query of its own,
# where the request's own statement checks the token again (the heartbeat): a revoked or
# expired token is still refused at once, by that statement.
RECENTLY_LIVE_SECONDS = 10.0
# Tokens are a handful per workspace, and only live ones are kept: bad tokens cannot fill it.
RECENTLY_LIVE_MAX = 10_000


@dataclass(frozen=True)
class Caller:
    workspace_id: UUID
    token_hash: str


_recently_live: dict[str, tuple[UUID, float]] = {}


def caller(request: HttpRequest, *, rechecked: bool = False) -> Caller | None:
    """The caller behind the request's bearer token, or None for a missing, unknown, expired
    or revoked one. `rechecked`: the request's own statement checks the token again, so a
    token found live within RECENTLY_LIVE_SECONDS in this process is taken without a query."""
    raw = bearer(request)
    token_hash = hash_token(raw)
    if rechecked and (seen := _recently_live.get(token_hash)) and seen[1] > time.monotonic():
        return Caller(workspace_id=seen[0], token_hash=token_hash)
    workspace_id = authenticate(raw)
    if workspace_id is None:
        return None
    if len(_recently_live) >= RECENTLY_LIVE_MAX:
        _recently_live.clear()
    _recently_live[token_hash] = (workspace_id, time.monotonic() + RECENTLY_LIVE_SECONDS)
    return Caller(workspace_id=workspace_id, token_hash=token_hash)


def bearer(request: HttpRequest) -> str:
    # META, not `headers`: that builds a mapping of every header, on the busiest path.
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
