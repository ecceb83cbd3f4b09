"""Plumbing of the members' JSON endpoints: session auth, membership, parameters, errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from uuid import UUID

from django.http import HttpRequest, JsonResponse

from common.errors import Conflict, NotFound
from runtimes import selectors

PAGE_LIMIT_DEFAULT = 50
# A page is one statement; 200 rows keep it a few milliseconds and a few hundred KB at most.
PAGE_LIMIT_MAX = 200


class BadRequest(Exception):
    pass


STATUS_OF = {BadRequest: 400, NotFound: 404, Conflict: 409}


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def member_endpoint(method: str) -> Callable:
    """Wraps a view `(request, workspace_id, **path)`: one HTTP method, a logged-in user (401)
    who is a member of the workspace (404, the same as for no such workspace), and the
    domain's refusals as JSON errors. CSRF applies to POST: the session cookie authenticates."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, workspace_id: str, **path) -> JsonResponse:
            if request.method != method:
                response = error(405, f"method not allowed: use {method}")
                response["Allow"] = method
                return response
            if not request.user.is_authenticated:
                return error(401, "not logged in")
            workspace = member_workspace(request.user, workspace_id)
            if workspace is None:
                return error(404, "workspace not found")
            try:
                return view(request, workspace, **path)
            except tuple(STATUS_OF) as exc:
                return error(STATUS_OF[type(exc)], str(exc))

        return wrapper

    return decorate


def member_workspace(user, workspace_id: str) -> UUID | None:
    """The workspace's id if `user` is one of its members, else None (also for a bad id)."""
    try:
        workspace = UUID(workspace_id)
    except ValueError:
        return None
    return workspace if selectors.is_member(user_id=user.pk, workspace_id=workspace) else None


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found") from None


def limit(request: HttpRequest) -> int:
    raw = request.GET.get("limit", "")
    if not raw:
        return PAGE_LIMIT_DEFAULT
    if not raw.isdecimal() or not 1 <= int(raw) <= PAGE_LIMIT_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {PAGE_LIMIT_MAX}, got {raw!r}")
    return int(raw)


def choices(request: HttpRequest, name: str, allowed: list[str]) -> tuple[str, ...]:
    """A comma-separated list of `allowed` names (empty: none given), in the order given."""
    raw = request.GET.get(name, "")
    values = tuple(v for v in raw.split(",") if v)
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise BadRequest(f"{name} must be among {', '.join(allowed)}; got {wrong[0]!r}")
    return tuple(dict.fromkeys(values))


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(request: HttpRequest, count: int) -> list[str] | None:
    """The `cursor` parameter's `count` parts, or None without one. A cursor is opaque: only
    one this API handed out is valid."""
    raw = request.GET.get("cursor", "")
    if not raw:
        return None
    try:
        parts = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != count:
        raise BadRequest("cursor is not one this API handed out")
    return parts


def time_and_id(parts: list[str]) -> tuple[datetime, UUID]:
    try:
        return datetime.fromisoformat(parts[0]), UUID(parts[1])
    except ValueError:
        raise BadRequest("cursor is not one this API handed out") from None
