"""The README's curl examples work as written, against a live server and the real database."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from runtimes.tokens import issue_token

pytestmark = pytest.mark.django_db(transaction=True)


def readme_examples() -> list[str]:
    path = Path(os.environ.get("README_PATH", settings.BASE_DIR / "README.md"))
    section = path.read_text().partition("## Daemon API")[2].partition("\n## ")[0]
    return [b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "curl" in b]


def run_curl(command: str, env: dict) -> tuple[int, dict]:
    done = subprocess.run(
        ["bash", "-c", command.strip() + " -w '\\n%{http_code}'"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_every_endpoint_has_a_working_curl_example(live_server, make):
    workspace = make.workspace()
    agent = make.agent(make.runtime(workspace, provider="codex"), status="idle")
    make.task(agent, status="queued")
    tasks = {
        "start": make.task(agent, status="dispatched"),
        "complete": make.task(agent, status="running"),
        "fail": make.task(agent, status="running"),
        "status": make.task(agent, status="failed"),
    }
    env = {
        "BASE": live_server.url,
        "TOKEN": issue_token(workspace=workspace)[1],
        "WORKSPACE": str(workspace.id),
        "RUNTIME": str(agent.runtime_id),
    }
    seen = set()

    for example in readme_examples():
        endpoint = re.search(r"/api/daemon/(?:tasks/\$TASK/)?([a-z/$A-Z]+)\"", example)[1]
        action = endpoint.rsplit("/", 1)[-1]
        task = tasks.get(action)
        status, body = run_curl(example, {**env, "TASK": str(task.id) if task else ""})
        assert status == 200, (example, body)
        seen.add(action)

    assert seen == {
        "register",
        "heartbeat",
        "claim",
        "start",
        "complete",
        "fail",
        "status",
        "deregister",
    }
