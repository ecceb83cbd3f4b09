"""`manage.py create_daemon_token --workspace <id>`: prints a new daemon token once, alone on
the last line of stdout; only its hash is kept."""

from datetime import timedelta
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError

from runtimes.models import Workspace
from runtimes.tokens import MAX_EXPIRES_IN_DAYS, issue_token


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise CommandError(f"--expires-in-days must be a whole number, got {value!r}") from None
    if days <= 0:
        raise CommandError(f"--expires-in-days must be greater than zero, got {days}")
    if days > MAX_EXPIRES_IN_DAYS:
        raise CommandError(f"--expires-in-days must be at most {MAX_EXPIRES_IN_DAYS}, got {days}")
    return days


class Command(BaseCommand):
    help = "Create a bearer token for a workspace's daemons and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace id (UUID)")
        parser.add_argument("--name", default="", help="a label shown in the admin")
        # Checked in handle(), so that a bad value is a one-line error like a bad workspace.
        parser.add_argument("--expires-in-days", default=None, help="days until it expires")

    def handle(self, *args, workspace, name, expires_in_days, **options):
        try:
            workspace_id = UUID(workspace)
        except ValueError:
            raise CommandError(f"--workspace must be a UUID, got {workspace!r}") from None
        found = Workspace.objects.filter(id=workspace_id).first()
        if found is None:
            raise CommandError(f"no workspace {workspace_id}")
        days = None if expires_in_days is None else positive_days(expires_in_days)
        expires_in = None if days is None else timedelta(days=days)
        token, raw = issue_token(workspace=found, name=name[:200], expires_in=expires_in)
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stdout.write(
            f"Daemon token {token.id} for workspace {found.name} ({found.id}), "
            f"expires {expiry}. It is shown only now:"
        )
        self.stdout.write(raw)
