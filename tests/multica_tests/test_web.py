"""The production web process, `python -m multica.web` (granian), serving the admin and the
daemon API over real HTTP against the test database, each thread keeping its connection, and
announcing through the real channel layer to a WebSocket served elsewhere."""

import http.client
import json
import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from multica import web
from runtimes.models import AgentRuntime
from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tests.helpers.websockets import event_body, listen, session_cookie
from tools.servers import BASE_DIR, daemon_post, production_env, web_process

THREADS = 2


def web_server(**variables: str):
    env = production_env(
        DATABASE_URL=database_url(), WEB_WORKERS="1", WEB_THREADS=str(THREADS), **variables
    )
    env.pop("CONN_MAX_AGE", None)  # the web process sets it: that is what is tested
    return web_process("web", env)


def new_backends(since) -> set[int]:
    """PostgreSQL sessions on the test database opened since `since`, other than this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_start >= %s AND pid <> pg_backend_pid()",
            [since],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_heartbeats_reuse_each_threads_database_connection(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace, status="offline", seen_ago=600)
    token = issue_token(workspace=workspace)[1]
    with web_server() as port:
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            started = cursor.fetchone()[0]
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"runtime_id": str(runtime.id)})
        seen = []
        for _ in range(30):
            client.request("POST", "/api/daemon/heartbeat", body=body, headers=headers)
            response = client.getresponse()
            assert response.status == 200, response.read()
            assert json.loads(response.read()) == {"id": str(runtime.id), "status": "online"}
            seen.append(new_backends(started))
        client.request("GET", "/admin/login/")
        assert client.getresponse().status == 200
        client.close()

    runtime.refresh_from_db()
    assert runtime.status == "online"
    assert runtime.last_seen_at > started
    # Kept open between requests (without reuse each request would open and close its own),
    # at most one per thread, and the first one still the same after 30 requests.
    assert seen[0]
    assert seen[0] <= seen[-1]
    assert len(set().union(*seen)) <= THREADS
    assert AgentRuntime.objects.filter(status="online").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_process_environment_does_not_reach_requests(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    body = json.dumps({"runtime_id": str(runtime.id)})
    # The server copies its environment into each request's; left there, this variable
    # would pass for the header of a client that sent none.
    with web_server(HTTP_AUTHORIZATION=f"Bearer {token}") as port:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("POST", "/api/daemon/heartbeat", body=body)
        response = client.getresponse()
        client.close()

    assert response.status == 401


@pytest.mark.django_db(transaction=True)
def test_requests_carry_on_when_the_database_has_closed_the_kept_connections(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    body = json.dumps({"runtime_id": str(runtime.id)}).encode()
    with web_server() as port:
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            started = cursor.fetchone()[0]
        for _ in range(5):
            assert daemon_post(port, "/api/daemon/heartbeat", body, token)[0] == 200
        kept = new_backends(started)
        assert kept
        # As a database restart or an administrator would: every kept connection closed
        # between two requests. Each thread must find out before its next query, not by it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [list(kept)])
        deadline = time.monotonic() + 10
        while new_backends(started) & kept:
            assert time.monotonic() < deadline, "terminated connections still listed"
            time.sleep(0.05)

        statuses = [daemon_post(port, "/api/daemon/heartbeat", body, token)[0] for _ in range(10)]

    assert statuses == [200] * 10


@pytest.mark.django_db(transaction=True)
def test_a_change_made_over_http_reaches_the_workspaces_websocket(make, django_user_model):
    workspace = make.workspace()
    member = django_user_model.objects.create_user("member")
    workspace.members.add(member)
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    with web_server() as port:

        def deregister():
            body = json.dumps({"runtime_ids": [str(runtime.id)]}).encode()
            assert daemon_post(port, "/api/daemon/deregister", body, token)[0] == 200

        [message] = listen(workspace.id, session_cookie(member), deregister, count=1)

    assert event_body(message) == {
        "type": "daemon:register",
        "workspace_id": str(workspace.id),
        "actor_type": "system",
        "payload": {"action": "deregister", "runtime_ids": [str(runtime.id)]},
    }


def configured() -> subprocess.CompletedProcess:
    """The web process's server as configured from the environment, built in a process of its
    own (building one sets up granian's logging) and printed, not started."""
    show = (
        "from multica import web; s = web.server('127.0.0.1', 8000); "
        "print(s.workers, s.blocking_threads, s.interface, s.target, "
        "s.http1_settings.header_read_timeout, s.respawn_failed_workers)"
    )
    return subprocess.run(
        [sys.executable, "-c", show], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("blank", [False, True], ids=["absent", "blank, as compose passes it"])
def test_the_web_process_defaults_to_two_workers_of_four_threads(monkeypatch, blank):
    for name in ("WEB_WORKERS", "WEB_THREADS"):
        if blank:
            monkeypatch.setenv(name, "")
        else:
            monkeypatch.delenv(name, raising=False)

    done = configured()

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "2", "4", "wsgi", "multica.wsgi:application", str(web.IDLE_CONNECTION_MS), "True"
    ]  # fmt: skip


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
@pytest.mark.parametrize("name", ["WEB_WORKERS", "WEB_THREADS"])
def test_a_bad_worker_count_stops_the_web_process_with_one_clear_line(name, value):
    done = subprocess.run(
        [sys.executable, "-m", "multica.web", "--port", "0"],
        cwd=BASE_DIR, env={**os.environ, name: value}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip() == f"{name} must be a whole number of at least 1, not {value!r}"
