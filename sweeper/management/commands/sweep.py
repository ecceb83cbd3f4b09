"""`manage.py sweep`: both sweeps (or one) now, for ad-hoc runs; `--dry-run` changes nothing."""

import getpass
import json
import logging
from contextlib import nullcontext

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction

from sweeper import guards, state
from sweeper.config import Rules
from sweeper.results import SweepResult
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks import steps as task_steps

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the stale-runtime and stuck-task sweeps now (both unless one is named)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Bad arguments get one line on stderr (argparse's "prog: error: ..."), no usage dump.
        parser.print_usage = lambda file=None: None
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--runtimes", action="store_true", help="only the runtime sweep")
        parser.add_argument("--tasks", action="store_true", help="only the task sweep")
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
        parser.add_argument(
            "--release-brake",
            action="store_true",
            help="release the mass-outage brake first, so that the tasks it holds may fail",
        )

    def handle(self, *args, **options):
        both = not (options["runtimes"] or options["tasks"])
        try:
            result, report = self._sweep(
                runtimes=both or options["runtimes"],
                tasks=both or options["tasks"],
                dry_run=options["dry_run"],
                release_brake=options["release_brake"],
            )
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
            raise CommandError(f"database unavailable: {first_line}") from exc
        logger.info("sweep.done", extra={"dry_run": options["dry_run"], **result.counts()})
        if options["json"]:
            self.stdout.write(json.dumps({**_as_json(result, options["dry_run"]), **report}))
        else:
            self.stdout.write(_summary(result, options["dry_run"], report))

    def _sweep(
        self, *, runtimes: bool, tasks: bool, dry_run: bool, release_brake: bool
    ) -> tuple[SweepResult, dict]:
        # A dry run is the real sweep in one transaction that is rolled back: it reports exactly
        # what a sweep would change, and the events it recorded are rolled back with it. A
        # real run must not be wrapped: each chunk commits on its own.
        rules = Rules.from_settings()
        with transaction.atomic() if dry_run else nullcontext():
            if release_brake:
                guards.release_brake(by=f"{getpass.getuser()} (manage.py sweep)")
            result = SweepResult()
            if runtimes:
                result.add(sweep_stale_runtimes(rules=rules))
            if tasks:
                result.add(sweep_stale_tasks(rules=rules))
            report = _state_report()
            if dry_run:
                transaction.set_rollback(True)
        return result, report


def _state_report() -> dict:
    """The guards' state after the sweep: the brake, the hearing, the contradicted verdicts."""
    current = state.read()

    def when(moment) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "brake": {
            "engaged": current.brake_engaged_at is not None,
            "engaged_at": when(current.brake_engaged_at),
            "online_when_engaged": current.brake_online,
            "stale_when_engaged": current.brake_stale,
            "released_at": when(current.brake_released_at),
            "released_by": current.brake_released_by or None,
        },
        "hearing": {
            "silent_since": when(current.silent_after),
            "heard_since": when(current.heard_since),
        },
        "contradicted": {
            "tasks": task_steps.contradicted_count(),
            "runtimes": current.contradicted_runtimes,
        },
    }


def _as_json(result: SweepResult, dry_run: bool) -> dict:
    return {
        "dry_run": dry_run,
        "runtimes_marked_offline": [str(r.id) for r in result.runtimes_marked_offline],
        "tasks_failed": [
            {"task_id": str(t.id), "failure_reason": t.failure_reason} for t in result.tasks_failed
        ],
        "agents_set_idle": [str(a.id) for a in result.agents_changed],
    }


def _summary(result: SweepResult, dry_run: bool, report: dict) -> str:
    verb = "would be" if dry_run else "were"
    lines = [
        f"{len(result.runtimes_marked_offline)} runtime(s) {verb} marked offline",
        f"{len(result.tasks_failed)} task(s) {verb} failed",
        f"{len(result.agents_changed)} agent(s) {verb} set idle",
    ]
    brake = report["brake"]
    if brake["engaged"]:
        lines.append(f"brake engaged since {brake['engaged_at']}: offline runtimes' tasks held")
    lines += [f"  runtime {r.id} offline" for r in result.runtimes_marked_offline]
    lines += [f"  task {t.id} failed: {t.failure_reason}" for t in result.tasks_failed]
    return "\n".join(lines)
