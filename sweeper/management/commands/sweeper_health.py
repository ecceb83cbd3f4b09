"""`manage.py sweeper_health`: the dead-man's switch as an exit status, for container health
checks (beat's in docker-compose.yml). The same judgement as GET /health/sweeper."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from sweeper import health


class Command(BaseCommand):
    help = "Exit 0 while both sweeps succeeded within 3 sweep intervals; 1 with the reason."

    def handle(self, *args, **options):
        try:
            judged = health.check(interval=timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS))
        except DatabaseError as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise CommandError(f"database unavailable: {lines[0]}") from exc
        if not judged.ok:
            raise CommandError("; ".join(judged.reasons))
        self.stdout.write("sweeper ok")
