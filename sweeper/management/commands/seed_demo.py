"""`manage.py seed_demo`: a demo workspace with an admin login, some of its runtimes stale."""

import os
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from common.admin import human_duration
from common.states import ACTIVE_TASK_STATUSES
from runtimes.models import Agent, AgentRuntime, Workspace
from tasks.models import AgentTask

WORKSPACE_NAME = "Demo workspace"
USERNAME = "demo"

# How long ago each runtime was last seen, and its tasks with how old they are.
# Ages are names resolved against the configured thresholds when the command runs.
PLAN = [
    ("alice-laptop", "claude", "fresh", [("running", "recent"), ("queued", "recent")]),
    ("alice-laptop", "codex", "fresh", [("running", "past_running_timeout")]),
    ("build-box", "claude", "fresh", [("dispatched", "past_dispatch_timeout")]),
    ("old-mac", "claude", "stale", [("running", "recent"), ("dispatched", "recent")]),
    ("ci-runner", "codex", "stale", [("running", "recent"), ("queued", "recent")]),
    ("new-box", "claude", "never", [("queued", "recent")]),
]
HISTORY = [("completed", "history"), ("failed", "history"), ("cancelled", "history")]


def ages() -> dict[str, timedelta | None]:
    """How long before the database's now() each age name is, from the configured thresholds."""
    task_timeouts = (settings.TASK_DISPATCH_TIMEOUT_SECONDS, settings.TASK_RUNNING_TIMEOUT_SECONDS)
    return {
        "fresh": timedelta(0),
        "never": None,
        # Well inside both task timeouts, however small they are configured.
        "recent": timedelta(seconds=min(20, *task_timeouts) / 2),
        "history": timedelta(hours=3),
        "stale": timedelta(seconds=settings.RUNTIME_STALE_SECONDS + 600),
        "past_dispatch_timeout": timedelta(seconds=settings.TASK_DISPATCH_TIMEOUT_SECONDS + 60),
        "past_running_timeout": timedelta(seconds=settings.TASK_RUNNING_TIMEOUT_SECONDS + 600),
    }


class Command(BaseCommand):
    help = (
        f"Replace the workspace {WORKSPACE_NAME!r} with fresh demo data (runtimes, agents, "
        f"tasks, some stale) and (re)set the superuser {USERNAME!r} to a new printed password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="print only the login")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="seed only a database without workspaces; (re)set and print the login anyway",
        )

    def handle(self, *args, **options):
        with transaction.atomic():
            password = reset_demo_user()
            if options["if_empty"] and Workspace.objects.exists():
                self.stdout.write(f"Admin login: username {USERNAME}, password {password}")
                return
            workspace = reset_workspace()
            runtimes = [seed_runtime(workspace, *row) for row in PLAN]
            seed_history(runtimes[0])
        self.stdout.write(f"Admin login: username {USERNAME}, password {password}")
        if not options["quiet"]:
            self.stdout.write(describe(workspace))


def reset_demo_user() -> str:
    """Creates the demo superuser, or resets the existing one; returns its password: the
    one DEMO_PASSWORD gives (`make run` keeps one from run to run), or a new random one."""
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_staff = user.is_superuser = user.is_active = True
    user.save()
    return password


def reset_workspace() -> Workspace:
    # Replaced rather than added to: a second run must not collide on (daemon, provider).
    Workspace.objects.filter(name=WORKSPACE_NAME).delete()
    workspace = Workspace.objects.create(name=WORKSPACE_NAME)
    workspace.members.add(get_user_model().objects.get(username=USERNAME))
    return workspace


def seed_runtime(workspace, daemon, provider, seen, tasks) -> AgentRuntime:
    seen_ago = ages()[seen]
    runtime = AgentRuntime.objects.create(
        workspace=workspace,
        name=f"{daemon} {provider}",
        daemon_id=daemon,
        provider=provider,
        last_seen_at=None if seen_ago is None else Now() - seen_ago,
    )
    busy = any(status in ACTIVE_TASK_STATUSES for status, _ in tasks)
    agent = Agent.objects.create(
        workspace=workspace,
        runtime=runtime,
        name=f"{provider} coder on {daemon}",
        status=Agent.Status.WORKING if busy else Agent.Status.IDLE,
    )
    for status, age in tasks:
        seed_task(agent, status, ages()[age])
    return runtime


def seed_history(runtime: AgentRuntime) -> None:
    agent = runtime.agents.get()
    for status, age in HISTORY:
        seed_task(agent, status, ages()[age])


def seed_task(agent: Agent, status: str, age: timedelta) -> None:
    """A task that entered `status` `age` before the database's now()."""
    task = AgentTask.objects.create(agent=agent, runtime=agent.runtime, issue_id=uuid.uuid4())
    AgentTask.objects.filter(pk=task.pk).update(**task_fields(status, age))


def task_fields(status: str, age: timedelta) -> dict:
    """The status and timestamps of a task that entered `status` `age` ago. created_at is set
    here, after the insert, because auto_now_add stamps it with the application's clock."""
    entered = Now() - age
    fields = {"status": status, "created_at": entered - timedelta(seconds=10)}
    if status == "dispatched":
        fields["dispatched_at"] = entered
    elif status != "queued":
        fields.update(dispatched_at=entered - timedelta(seconds=5), started_at=entered)
    if status in ("completed", "failed", "cancelled"):
        fields["completed_at"] = entered + timedelta(minutes=30)
    if status == "failed":
        fields.update(failure_reason="agent_error", error="agent exited with status 1")
    return fields


def describe(workspace: Workspace) -> str:
    seen_ago = ExpressionWrapper(Now() - F("last_seen_at"), output_field=DurationField())
    runtimes = workspace.runtimes.annotate(seen_ago=seen_ago).order_by("daemon_id", "provider")
    lines = [f"Workspace {workspace.name!r} ({workspace.pk}):"]
    for runtime in runtimes:
        statuses = runtime.tasks.order_by("status").values_list("status", flat=True)
        seen = "never" if runtime.seen_ago is None else f"{human_duration(runtime.seen_ago)} ago"
        lines.append(f"  {runtime.name:<20} last seen {seen:<12} tasks: {', '.join(statuses)}")
    lines += [
        f"Runtimes unseen for {settings.RUNTIME_STALE_SECONDS}s are stale; tasks are stuck "
        f"after {settings.TASK_DISPATCH_TIMEOUT_SECONDS}s dispatched or "
        f"{settings.TASK_RUNNING_TIMEOUT_SECONDS}s running.",
        "No daemon heartbeats these runtimes, so the fresh ones go stale too after a while.",
        "Next, in a second terminal:",
        "  make sweep ARGS=--dry-run",
        "  make sweep",
        "the first shows what a sweep would change, the second sweeps; then watch runtimes go",
        "offline and tasks fail in the admin (/admin/).",
    ]
    return "\n".join(lines)
