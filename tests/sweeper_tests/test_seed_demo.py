"""`manage.py seed_demo`: a working login, and data that a real sweep visibly acts on."""

import re
from dataclasses import replace
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from runtimes.models import AgentRuntime
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.models import AgentTask

pytestmark = pytest.mark.django_db

LOGIN = re.compile(r"username (\S+), password (\S+)")


def seed(*args) -> tuple[str, str]:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    match = LOGIN.search(out.getvalue())
    assert match, out.getvalue()
    assert ("make sweep" in out.getvalue()) is ("--quiet" not in args)
    return match.group(1), match.group(2)


def sweep_now():
    # No reconnect grace: the stale runtimes' tasks fail in the same sweep; no second attempt:
    # the queue stays as the demo made it.
    rules = replace(Rules.from_settings(), reconnect_grace=timedelta(0), max_attempts=1)
    sweep_stale_runtimes(rules=rules)
    sweep_stale_tasks(rules=rules)


def admin_login(client, username: str, password: str) -> bool:
    """Logs in through the admin's own form, as a person would; whether it let them in."""
    response = client.post(reverse("admin:login"), {"username": username, "password": password})
    return response.status_code == 302


def test_printed_login_opens_the_admin(client):
    username, password = seed()

    assert admin_login(client, username, password)
    response = client.get(reverse("admin:runtimes_agentruntime_changelist"))
    assert response.status_code == 200
    assert "old-mac claude" in response.content.decode()


def test_running_twice_resets_the_login_and_replaces_the_demo(client):
    _, first_password = seed()
    username, second_password = seed("--quiet")

    assert not admin_login(client, username, first_password)
    assert admin_login(client, username, second_password)
    assert AgentRuntime.objects.filter(workspace__name="Demo workspace").count() == 6


def runtime_statuses() -> dict[str, str]:
    return dict(AgentRuntime.objects.values_list("name", "status"))


def failures() -> dict[tuple[str, str], str]:
    rows = AgentTask.objects.filter(status="failed").exclude(failure_reason="agent_error")
    # The evidence in an error ("... for 645 s ...") is cut off: the wording is what is tested.
    return {
        (t.runtime.name, t.failure_reason): t.error.partition(":")[0]
        for t in rows.select_related("runtime").order_by("runtime__name")
    }


def test_a_real_sweep_takes_the_stale_runtimes_offline_and_fails_their_tasks():
    seed()
    assert set(runtime_statuses().values()) == {"online"}
    assert failures() == {}
    queued_before = set(AgentTask.objects.filter(status="queued").values_list("pk", flat=True))

    sweep_now()

    assert runtime_statuses() == {
        "alice-laptop claude": "online",
        "alice-laptop codex": "online",
        "build-box claude": "online",
        "ci-runner codex": "offline",
        "new-box claude": "online",  # never seen, and made just now
        "old-mac claude": "offline",
    }
    assert failures() == {
        ("alice-laptop codex", "timeout"): "task timed out",
        ("build-box claude", "timeout"): "task timed out",
        ("ci-runner codex", "runtime_offline"): "runtime went offline",
        ("old-mac claude", "runtime_offline"): "runtime went offline",
    }
    assert AgentTask.objects.filter(status="failed", failure_reason="runtime_offline").count() == 3
    assert set(AgentTask.objects.filter(status="queued").values_list("pk", flat=True)) == (
        queued_before
    )
    # The one fresh running task survives the sweep.
    assert AgentTask.objects.filter(status="running").count() == 1


def test_if_empty_seeds_once_and_always_prints_a_working_login(client):
    seed("--if-empty", "--quiet")
    runtimes = set(AgentRuntime.objects.values_list("id", flat=True))

    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)

    assert set(AgentRuntime.objects.values_list("id", flat=True)) == runtimes != set()
    username, password = LOGIN.search(out.getvalue()).groups()
    assert admin_login(client, username, password)
