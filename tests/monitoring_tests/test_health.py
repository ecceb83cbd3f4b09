"""The probes: /healthz, /readyz against the real PostgreSQL and Redis (and a Redis that is
gone, or that never answers), /health/sweeper and `manage.py sweeper_health` on the sweeper's
recorded state."""

import json
import socket
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from common.sql import execute
from multica.processes import free_port
from sweeper import state

pytestmark = pytest.mark.django_db


def get(client, path):
    response = client.get(path)
    return response.status_code, json.loads(response.content)


def test_healthz_answers(client):
    assert get(client, "/healthz") == (200, {"status": "ok"})


def test_readyz_answers_while_postgres_and_redis_do(client):
    assert get(client, "/readyz") == (200, {"status": "ok"})


def test_readyz_names_a_redis_that_is_gone(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        status, body = get(client, "/readyz")
    assert status == 503
    assert set(body["failures"]) == {"redis"}


def test_readyz_names_a_postgres_that_is_gone(client, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", str(free_port()))
    status, body = get(client, "/readyz")
    assert status == 503
    assert set(body["failures"]) == {"postgres"}


def test_readyz_gives_up_on_a_redis_that_never_answers(client):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, then says nothing
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            status, body = get(client, "/readyz")
    finally:
        silent.close()
        for conn, _ in accepted:
            conn.close()
    assert status == 503
    assert body["failures"] == {"redis": "no answer within 1 s"}


def test_sweeper_health_fails_before_any_sweep(client):
    status, body = get(client, "/health/sweeper")
    assert status == 503
    assert body["reasons"] == [
        "the runtimes sweep has never succeeded",
        "the tasks sweep has never succeeded",
    ]


def swept(*, tasks_ago: float) -> None:
    """Both sweeps recorded; the tasks sweep's success `tasks_ago` seconds ago."""
    state.record_sweep("runtimes")
    state.record_sweep("tasks")
    ago = timedelta(seconds=tasks_ago)
    execute("UPDATE sweeper_state SET tasks_swept_at = now() - %(ago)s", ago=ago)


@override_settings(SWEEP_INTERVAL_SECONDS=10)
def test_sweeper_health_holds_while_both_sweeps_succeed_within_three_intervals(client):
    swept(tasks_ago=29)
    status, body = get(client, "/health/sweeper")
    assert (status, body["status"], body["limit_seconds"]) == (200, "ok", 30)
    assert body["last_success_seconds_ago"]["tasks"] == pytest.approx(29, abs=1)


@override_settings(SWEEP_INTERVAL_SECONDS=10)
def test_sweeper_health_names_the_sweep_that_stopped(client):
    swept(tasks_ago=31)
    status, body = get(client, "/health/sweeper")
    assert status == 503
    assert body["reasons"] == ["the tasks sweep last succeeded 31 s ago (limit 30 s)"]


def test_health_read_makes_no_state_row(client):
    get(client, "/health/sweeper")
    assert state.sweep_ages() == {"runtimes": None, "tasks": None}
    assert execute("SELECT 1 FROM sweeper_state") == 0


@override_settings(SWEEP_INTERVAL_SECONDS=10)
def test_the_command_exits_as_the_endpoint_answers(capsys):
    with pytest.raises(CommandError, match="the runtimes sweep has never succeeded"):
        call_command("sweeper_health")
    state.record_sweep("runtimes")
    state.record_sweep("tasks")
    call_command("sweeper_health")
    assert capsys.readouterr().out == "sweeper ok\n"
    execute("UPDATE sweeper_state SET runtimes_swept_at = now() - %(ago)s", ago=timedelta(hours=1))
    with pytest.raises(CommandError, match="runtimes sweep last succeeded 3600 s ago"):
        call_command("sweeper_health")
