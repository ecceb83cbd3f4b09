"""Settings from the environment (spec §5): bad values stop start-up naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from multica.settings import positive_seconds

ROOT = Path(__file__).resolve().parents[2]
SWEEP_SETTINGS = [
    "SWEEP_INTERVAL_SECONDS",
    "RUNTIME_STALE_SECONDS",
    "TASK_DISPATCH_TIMEOUT_SECONDS",
    "TASK_RUNNING_TIMEOUT_SECONDS",
]


@pytest.mark.parametrize("name", SWEEP_SETTINGS)
@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", ""])
def test_bad_durations_are_refused_by_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        positive_seconds(name, 30)


@pytest.mark.parametrize(("value", "expected"), [("2", 2), (" 8 ", 8), ("9000", 9000)])
def test_small_and_large_durations_are_valid(monkeypatch, value, expected):
    monkeypatch.setenv("RUNTIME_STALE_SECONDS", value)

    assert positive_seconds("RUNTIME_STALE_SECONDS", 45) == expected


def test_default_applies_when_unset(monkeypatch):
    monkeypatch.delenv("TASK_RUNNING_TIMEOUT_SECONDS", raising=False)

    assert positive_seconds("TASK_RUNNING_TIMEOUT_SECONDS", 9000) == 9000


def manage_check(drop=(), **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_stops_with_one_line_naming_the_variable():
    run = manage_check(RUNTIME_STALE_SECONDS="soon")

    assert run.returncode != 0
    assert run.stderr.strip() == (
        "configuration error: RUNTIME_STALE_SECONDS must be a whole number of seconds, got 'soon'"
    )


def test_production_refuses_to_start_without_a_secret_key():
    run = manage_check(drop=["SECRET_KEY"], DEBUG="0")

    assert run.returncode != 0
    assert "SECRET_KEY" in run.stderr


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("sqlite:///db.sqlite3", "sqlite"), ("mysql://root:secret@127.0.0.1/multica", "mysql")],
)
def test_a_database_other_than_postgresql_is_refused_without_showing_the_url(url, scheme):
    run = manage_check(DATABASE_URL=url)

    assert run.returncode != 0
    assert run.stderr.strip() == (
        "configuration error: DATABASE_URL must be a PostgreSQL URL (postgres://...),"
        f" not {scheme}://..."
    )


# --- the verdict guards' settings -------------------------------------------------------------

FRACTION, MINIMUM = "SWEEP_BRAKE_FRACTION", "SWEEP_BRAKE_MIN_RUNTIMES"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RUNTIME_STALE_SECONDS": "20", "RUNTIME_HEARTBEAT_SECONDS": "15"},
            "RUNTIME_STALE_SECONDS (20) must be at least twice RUNTIME_HEARTBEAT_SECONDS (15);"
            " three times is the convention",
        ),
        (
            {"SWEEP_INTERVAL_SECONDS": "45", "RUNTIME_STALE_SECONDS": "45"},
            "SWEEP_INTERVAL_SECONDS (45) must be less than RUNTIME_STALE_SECONDS (45)",
        ),
        (
            {"RUNTIME_RECONNECT_GRACE_SECONDS": "-1"},
            "RUNTIME_RECONNECT_GRACE_SECONDS must be at least 0, got -1",
        ),
        (
            {"RUNTIME_RECONNECT_GRACE_SECONDS": "soon"},
            "RUNTIME_RECONNECT_GRACE_SECONDS must be a whole number of seconds, got 'soon'",
        ),
        ({"SWEEP_BRAKE_FRACTION": "1.5"}, f"{FRACTION} must be above 0 and at most 1, got 1.5"),
        ({"SWEEP_BRAKE_FRACTION": "0"}, f"{FRACTION} must be above 0 and at most 1, got 0"),
        ({"SWEEP_BRAKE_FRACTION": "half"}, "SWEEP_BRAKE_FRACTION must be a number, got 'half'"),
        ({"SWEEP_BRAKE_MIN_RUNTIMES": "0"}, f"{MINIMUM} must be greater than zero, got 0"),
        (
            {"SWEEP_BRAKE_MIN_RUNTIMES": "many"},
            "SWEEP_BRAKE_MIN_RUNTIMES must be a whole number, got 'many'",
        ),
    ],
    ids=["stale-below-2-beats", "interval-not-below-stale", "negative-grace", "word-grace",
         "fraction-above-1", "fraction-0", "fraction-word", "min-0", "min-word"],
)  # fmt: skip
def test_the_guards_settings_stop_start_up_with_one_line(env, message):
    run = manage_check(**env)

    assert run.returncode != 0
    assert run.stderr.strip() == f"configuration error: {message}"


def test_small_thresholds_for_tests_and_demos_are_valid():
    run = manage_check(
        SWEEP_INTERVAL_SECONDS="2",
        RUNTIME_STALE_SECONDS="6",
        RUNTIME_HEARTBEAT_SECONDS="2",
        RUNTIME_RECONNECT_GRACE_SECONDS="0",
        SWEEP_BRAKE_FRACTION="1",
        SWEEP_BRAKE_MIN_RUNTIMES="1",
    )

    assert run.returncode == 0, run.stderr


# --- the WebSocket's settings -------------------------------------------------------------------


LIMIT, EXPIRY = "WEBSOCKETS_PER_USER_MAX", "CHANNEL_GROUP_EXPIRY_SECONDS"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({LIMIT: "0"}, f"{LIMIT} must be greater than zero, got 0"),
        ({LIMIT: "lots"}, f"{LIMIT} must be a whole number, got 'lots'"),
        ({EXPIRY: "0"}, f"{EXPIRY} must be greater than zero, got 0"),
    ],
    ids=["limit-0", "limit-word", "expiry-0"],
)
def test_the_websockets_settings_stop_start_up_with_one_line(env, message):
    run = manage_check(**env)

    assert run.returncode != 0
    assert run.stderr.strip() == f"configuration error: {message}"
