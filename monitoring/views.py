"""Probes for orchestrators and monitors: /healthz (the process answers), /readyz (its
database and Redis answer), /health/sweeper (the dead-man's switch on beat and the worker),
plain JSON with no login, each saying only whether something works; and /metrics, for
Prometheus, behind METRICS_TOKEN when it is set."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from common import metrics
from monitoring import collectors, readiness
from sweeper import health


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    failed = readiness.failures()
    if failed:
        return JsonResponse({"status": "failing", "failures": failed}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def sweeper_health(request):
    try:
        judged = health.check(interval=timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS))
    except DatabaseError as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        body = {"status": "failing", "reasons": [f"database unavailable: {lines[0]}"]}
        return JsonResponse(body, status=503)
    return JsonResponse(judged.as_json(), status=200 if judged.ok else 503)


@require_GET
def metrics_view(request):
    """Prometheus' text format; with METRICS_TOKEN set, only for `Authorization: Bearer` it."""
    if settings.METRICS_TOKEN and not _bearer_is(request, settings.METRICS_TOKEN):
        response = HttpResponse("metrics need the bearer token\n", status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    body = metrics.render(collectors.families())
    return HttpResponse(body, content_type=metrics.CONTENT_TYPE)


def _bearer_is(request, token: str) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    # Constant time: how much of a guess matched must not show in how long a refusal takes.
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
