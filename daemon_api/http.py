"""Plumbing shared by the daemon-facing views: the endpoint wrapper, JSON bodies, field checks
and JSON errors. Views stay a few lines: read fields, call one domain function, answer."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from common.errors import Conflict, NotAuthenticated, NotFound
from daemon_api import auth

# Daemons send ids and short texts; a task's result is the one large thing, and 256 KiB is
# generous for a summary while keeping a hostile body from costing real memory.
MAX_BODY_BYTES = 256 * 1024


class BadRequest(Exception):
    pass


class PayloadTooLarge(Exception):
    pass


STATUS_OF = {BadRequest: 400, NotFound: 404, PayloadTooLarge: 413, Conflict: 409}


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def daemon_endpoint(
    method: str, *, token_rechecked: bool = False, answered: Callable[[int], None] | None = None
) -> Callable:
    """Wraps a view `(request, caller, **path)`: one HTTP method, a live bearer token checked
    before the body is read (401 otherwise), and the domain's refusals turned into JSON
    errors. Cookies play no part, so CSRF does not apply. `token_rechecked`: the view's own
    statement checks the token again (see `auth.caller`). `answered` is told each answer's
    status (a metric's count)."""

    def decorate(view: Callable) -> Callable:
        endpoint = _endpoint(view, method, token_rechecked)
        if answered is None:
            return endpoint

        @csrf_exempt
        @wraps(view)
        def counted(request: HttpRequest, **path) -> JsonResponse:
            response = endpoint(request, **path)
            answered(response.status_code)
            return response

        return counted

    return decorate


def _endpoint(view: Callable, method: str, token_rechecked: bool) -> Callable:
    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, **path) -> JsonResponse:
        if request.method != method:
            response = error(405, f"method not allowed: use {method}")
            response["Allow"] = method
            return response
        caller = auth.caller(request, rechecked=token_rechecked)
        if caller is None:
            return _unauthorized()
        try:
            return view(request, caller, **path)
        except NotAuthenticated:
            return _unauthorized()
        except tuple(STATUS_OF) as exc:
            return error(STATUS_OF[type(exc)], str(exc))

    return wrapper


def _unauthorized() -> JsonResponse:
    response = error(401, "missing, invalid, expired or revoked token")
    response["WWW-Authenticate"] = "Bearer"
    return response


def json_body(request: HttpRequest) -> dict:
    """The body as a JSON object whose every string PostgreSQL can store."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("invalid Content-Length") from None
    if declared > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes") from None
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw, parse_constant=_no_constants, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    _check_strings(data)
    return data


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses as infinity, which jsonb refuses: it would surface as a 500, not a 400.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _check_strings(data) -> None:
    # PostgreSQL stores neither NUL characters nor unpaired surrogates, in text or in jsonb.
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str) and ("\x00" in item or not _is_utf8(item)):
            raise BadRequest("strings must not contain NUL characters or lone surrogates")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_field(body: dict, name: str, *, max_length: int, allow_empty: bool = False) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"{name}: required string")
    if not value and not allow_empty:
        raise BadRequest(f"{name}: must not be empty")
    if len(value) > max_length:
        raise BadRequest(f"{name}: longer than {max_length} characters")
    return value


def uuid_field(body: dict, name: str) -> UUID:
    return parse_uuid(body.get(name), name)


def parse_uuid(value, name: str) -> UUID:
    if not isinstance(value, str):
        raise BadRequest(f"{name}: required UUID string")
    try:
        return UUID(value)
    except ValueError:
        raise BadRequest(f"{name}: not a UUID") from None


def list_field(body: dict, name: str, *, max_items: int, allow_empty: bool = False) -> list:
    value = body.get(name)
    if not isinstance(value, list) or not (value or allow_empty):
        raise BadRequest(f"{name}: required {'' if allow_empty else 'non-empty '}array")
    if len(value) > max_items:
        raise BadRequest(f"{name}: more than {max_items} items")
    return value


def path_uuid(value: str, what: str) -> UUID:
    """A path id that is not a UUID names nothing: 404, like any unknown id."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found") from None
