"""`python manage.py sweep` (spec §4): in-process for the logic, as a real process for what an
operator sees on stdout, stderr and the exit status."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from runtimes.models import AgentRuntime
from tasks.models import AgentTask
from tests.helpers.db import database_url

ROOT = Path(__file__).resolve().parents[2]


def sweep_json(*args) -> dict:
    out = StringIO()
    call_command("sweep", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(autouse=True)
def _no_reconnect_grace(settings):
    # Tasks of a runtime found stale fail in the same sweep, as they did before the grace.
    settings.RUNTIME_RECONNECT_GRACE_SECONDS = 0


@pytest.fixture
def world(make):
    """A stale runtime with a running task, and a stuck task on a healthy runtime."""
    offline_task = make.task(make.agent(make.runtime(seen_ago=600)), status="running")
    stuck_task = make.task(make.agent(make.runtime(seen_ago=1)), status="dispatched", age=301)
    return offline_task, stuck_task


@pytest.mark.django_db
def test_json_names_every_change(world):
    offline_task, stuck_task = world

    report = sweep_json()
    guards = {key: report.pop(key) for key in ("brake", "hearing", "contradicted")}

    assert guards["brake"]["engaged"] is False
    assert guards["contradicted"] == {"tasks": 0, "runtimes": 0}
    assert report == {
        "dry_run": False,
        "runtimes_marked_offline": [str(offline_task.runtime_id)],
        "tasks_failed": [
            {"task_id": str(offline_task.id), "failure_reason": "runtime_offline"},
            {"task_id": str(stuck_task.id), "failure_reason": "timeout"},
        ],
        "agents_set_idle": [],
    }
    assert AgentTask.objects.filter(status="failed").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flag", "reasons"), [("--runtimes", ["runtime_offline"]), ("--tasks", ["timeout"])]
)
def test_one_sweep_only(world, flag, reasons):
    report = sweep_json(flag)

    assert [t["failure_reason"] for t in report["tasks_failed"]] == reasons
    assert bool(report["runtimes_marked_offline"]) == (flag == "--runtimes")


@pytest.mark.django_db
def test_dry_run_reports_exactly_what_a_sweep_would_change_and_changes_nothing(
    world, signal_log, django_capture_on_commit_callbacks
):
    before = sorted(AgentTask.objects.values_list("id", "status"))

    with django_capture_on_commit_callbacks(execute=True):
        dry = sweep_json("--dry-run")

    assert sorted(AgentTask.objects.values_list("id", "status")) == before
    assert AgentRuntime.objects.filter(status="offline").count() == 0
    assert signal_log.tasks_failed == signal_log.runtimes_offline == []
    real = sweep_json()
    assert dry["dry_run"] is True
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {
        k: v for k, v in real.items() if k != "dry_run"
    }


@pytest.mark.django_db
def test_human_summary(world):
    out = StringIO()
    call_command("sweep", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "1 runtime(s) would be marked offline" in text
    assert "2 task(s) would be failed" in text


def manage(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_json_is_alone_on_stdout_and_logs_go_to_stderr(world):
    env = {
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "INFO",
        "RUNTIME_RECONNECT_GRACE_SECONDS": "0",
    }

    run = manage("sweep", "--json", **env)

    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert len(report["tasks_failed"]) == 2
    assert "sweep.done" in run.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["--json", "extra"], ["--chunk", "5"]])
def test_bad_arguments_give_one_line_and_exit_2(args):
    run = manage("sweep", *args)

    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
    assert "error:" in run.stderr


def test_unreachable_database_gives_one_line_and_non_zero_exit():
    run = manage("sweep", DATABASE_URL="postgres://postgres@127.0.0.1:1/nothing")

    assert run.returncode != 0
    (line,) = run.stderr.strip().splitlines()
    assert "database unavailable" in line
