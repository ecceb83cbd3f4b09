"""`make run` as a new user meets it: the hint it prints works as printed, a second run stops at
once with one line and touches nothing, the demo login stays the same from run to run and is
printed again after the Celery banners, and `.env` is read."""

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from multica import processes
from tests.helpers.db import database_url
from tools.servers import BASE_DIR, redis_server

pytestmark = pytest.mark.django_db(transaction=True)


def local_env(tmp_path, broker_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "PORT": str(processes.free_port()),
        "MULTICA_RUN_DIR": str(tmp_path / "run"),
        "DEBUG": "1",
        "DEMO_FLEET": "0",
    }


class Run:
    """`python -m multica.localrun run` (what `make run` runs), its output collected."""

    def __init__(self, env: dict):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "multica.localrun", "run"],
            cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.collector = threading.Thread(target=self._collect, daemon=True)
        self.collector.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            assert self.process.poll() is None, "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, "\n".join(self.lines[-30:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        self.collector.join(timeout=10)
        self.process.stdout.close()


def demo_password_hash() -> str:
    return get_user_model().objects.get(username="demo").password


def test_a_second_run_stops_at_once_and_the_login_stays_the_same(tmp_path):
    with redis_server() as broker:
        env = local_env(tmp_path, broker.url)
        first = Run(env)
        try:
            login = first.wait_for(
                r"\[run\] board: .* admin: http://127\.0\.0\.1:\d+/admin/  login: demo / (\S+)"
            )
            # After the worker's banner and its "ready", not lost above them.
            ready = next(i for i, line in enumerate(first.lines) if " ready." in line)
            assert first.lines.index(login.string) > ready
            password, hashed = login.group(1), demo_password_hash()

            started = time.monotonic()
            second = subprocess.run(
                [sys.executable, "-m", "multica.localrun", "run"],
                cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert time.monotonic() - started < 10
            assert second.returncode == 1
            assert second.stdout == ""
            assert len(second.stderr.splitlines()) == 1, second.stderr
            assert second.stderr.startswith("[run] already running (pid ")
            assert demo_password_hash() == hashed  # the running one's login still works
        finally:
            first.stop()
        again = Run(env)
        try:
            assert again.wait_for(r"login: demo / (\S+)").group(1) == password
        finally:
            again.stop()


def test_the_next_hint_works_as_printed(make, tmp_path):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    lines = out.getvalue().splitlines()
    after = lines[lines.index("Next, in a second terminal:") + 1 :]
    commands = [line.strip() for line in after if line.startswith("  ")]
    assert commands == ["make sweep ARGS=--dry-run", "make sweep"], lines
    env = {**os.environ, "DATABASE_URL": database_url(), "MULTICA_RUN_DIR": str(tmp_path)}
    for command in commands:
        done = subprocess.run(
            shlex.split(command), cwd=BASE_DIR, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "runtime(s)" in done.stdout


def test_dot_env_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SWEEP_INTERVAL_SECONDS=7\nRUNTIME_STALE_SECONDS=40\n")
    env = {**os.environ, "ENV_FILE": str(env_file), "DEBUG": "1", "RUNTIME_STALE_SECONDS": "44"}
    env.pop("SWEEP_INTERVAL_SECONDS", None)
    show = "from django.conf import settings as s"
    show += "; print(s.SWEEP_INTERVAL_SECONDS, s.RUNTIME_STALE_SECONDS)"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show],
        cwd=BASE_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout.split()[-2:] == ["7", "44"], done.stdout + done.stderr


def test_make_run_takes_its_servers_from_dot_env(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL={database_url()}\nREDIS_URL=redis://127.0.0.1:1/0\n")
    env = {**os.environ, "ENV_FILE": str(env_file), "MULTICA_RUN_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    show = "import os; print(os.environ['DATABASE_URL'], os.environ['REDIS_URL'])"
    done = subprocess.run(
        [sys.executable, "-m", "multica.localrun", "exec", "--", sys.executable, "-c", show],
        cwd=BASE_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout.split() == [database_url(), "redis://127.0.0.1:1/0"], done.stderr
    assert "embedded" not in done.stderr
