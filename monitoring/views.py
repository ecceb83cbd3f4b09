"""Probes for orchestrators and monitors: /healthz (the process answers), /readyz (its
database and Redis answer), /health/sweeper (the dead-man's switch on beat and the worker).
Plain JSON, no session, no login: each says only whether something works."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from monitoring import readiness
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
