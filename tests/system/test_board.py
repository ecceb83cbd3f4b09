"""The board in a real browser (Debian's Chromium through Playwright) against the production
processes (daphne, a worker, beat) and a simulated fleet (tools.daemons): a member logs in,
watches a daemon die without reloading, sees the gap of an ASGI restart filled, retries and
dismisses; strangers are turned away. Screenshots go to test-artifacts/board/."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.db.models.functions import Now
from playwright import sync_api as playwright

from runtimes.models import AgentRuntime
from runtimes.tokens import issue_token
from tasks.models import AgentTask
from tests.helpers.db import database_url
from tests.helpers.stack import production_stack
from tools.servers import BASE_DIR, redis_server, stop

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = BASE_DIR / "test-artifacts" / "board"
# The simulator beats every 15 s (+-20%): stale after 24 s without one. No grace and no second
# attempt, so a dead daemon's task fails as its runtime goes offline and waits for a Retry.
SETTINGS = {
    "SWEEP_INTERVAL_SECONDS": "2",
    "RUNTIME_STALE_SECONDS": "24",
    "RUNTIME_HEARTBEAT_SECONDS": "12",
    "RUNTIME_RECONNECT_GRACE_SECONDS": "0",
    "TASK_MAX_ATTEMPTS": "1",
    "DEBUG": "1",
}
XSS = '<img src=x onerror="window.xssRan = true">agent exited with status 1'
SLOW = 90_000  # ms: a death takes the stale threshold and a sweep to be seen


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # plain blocking ones all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()
        # While Playwright runs, Django opens a connection of its own, which pytest-django
        # does not know of: closed before the test database is dropped.
        connection.close()


class Fleet:
    """tools.daemons in a process of its own, driven through its stdin commands."""

    def __init__(self, port: int, token: str, workspace_id, daemons: int):
        argv = [sys.executable, "-m", "tools.daemons", "--base", f"http://127.0.0.1:{port}",
                "--token", token, "--workspace", str(workspace_id), "--daemons", str(daemons),
                "--work-seconds", "600", "--queue", "1", "--prefix", "bt"]  # fmt: skip
        # --queue writes the agents and tasks it hands out to the test database.
        env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert "daemons registered" in self.process.stdout.readline()

    def kill_one(self) -> str:
        """Kills the next daemon; the id of its runtime."""
        self.process.stdin.write("kill 1\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line.startswith("killed "), line
        return line.rsplit(" ", 1)[1].strip()

    def close(self) -> None:
        stop(self.process, timeout=5)
        self.process.stdin.close()
        self.process.stdout.close()


def log_in(page, base: str, username: str) -> None:
    page.goto(base + "/")
    assert "/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")


def wait_until(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def running_task_of(runtime_id: str) -> str:
    wait_until(lambda: AgentTask.objects.filter(runtime_id=runtime_id, status="running").exists())
    return str(AgentTask.objects.get(runtime_id=runtime_id, status="running").id)


def test_a_member_watches_the_fleet_live(make, django_user_model, tmp_path, browser):
    workspace = make.workspace("Browser test")
    member = django_user_model.objects.create_user("member", password="pw")
    workspace.members.add(member)
    django_user_model.objects.create_user("stranger", password="pw")
    gone = make.runtime(workspace, daemon_id="old-mac", status="offline", seen_ago=3600)
    AgentRuntime.objects.filter(pk=gone.pk).update(offline_at=Now())
    failed = make.task(
        make.agent(gone, name="old coder"), status="failed", failure_reason="agent_error",
        error=XSS, completed_at=Now(),
    )  # fmt: skip
    _, token = issue_token(workspace=workspace)

    with (
        redis_server() as broker,
        production_stack(tmp_path, broker.url, SETTINGS) as product,
    ):
        base = f"http://127.0.0.1:{product.port}"
        fleet = Fleet(product.port, token, workspace.id, daemons=2)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, base, "member")
            page.wait_for_url(f"{base}/workspaces/{workspace.id}/")
            page.wait_for_selector("#connection[data-state=live]")
            page.wait_for_selector("[data-runtime-id][data-status=online] >> nth=1")
            page.wait_for_selector("#active-tasks [data-task-id] >> nth=1", timeout=SLOW)
            page.evaluate("window.sameDocument = true")
            page.screenshot(path=ARTIFACTS / "1-live.png", full_page=True)

            # The daemon's text is text: shown as written, never run.
            error = page.locator(f'#failures [data-task-id="{failed.id}"] .error')
            assert error.text_content() == XSS
            assert error.locator("img").count() == 0
            assert page.evaluate("window.xssRan") is None

            # A daemon dies: its row turns offline and its task shows among the failures.
            dead = fleet.kill_one()
            task = running_task_of(dead)
            page.wait_for_selector(f'[data-runtime-id="{dead}"][data-status=offline]', timeout=SLOW)
            page.wait_for_selector(f'#failures [data-task-id="{task}"]', timeout=SLOW)
            assert page.evaluate("window.sameDocument")
            page.screenshot(path=ARTIFACTS / "2-daemon-died.png", full_page=True)

            # The ASGI server restarts while the other daemon dies: the socket, reopened with
            # ?after=, replays the gap; the board refetches no snapshot of the failures.
            other = fleet.kill_one()
            other_task = running_task_of(other)
            requests, sockets = [], []
            page.on("request", lambda request: requests.append(request.url))
            page.on("websocket", lambda socket: sockets.append(socket.url))
            product.stop("web")
            page.wait_for_selector("#connection[data-state=reconnecting]")
            wait_until(lambda: AgentTask.objects.get(pk=other_task).status == "failed", 90)
            product.start("web")
            page.wait_for_selector(f'#failures [data-task-id="{other_task}"]', timeout=SLOW)
            page.wait_for_selector(f'[data-runtime-id="{other}"][data-status=offline]')
            page.wait_for_selector("#connection[data-state=live]", timeout=SLOW)
            assert page.evaluate("window.sameDocument")
            assert sockets
            assert all("/events/?after=" in url for url in sockets)
            assert not [url for url in requests if "status=failed" in url]

            # Retry queues one new attempt; Dismiss hides the runtime gone for good.
            page.click(f'#failures [data-task-id="{task}"] button')
            page.wait_for_selector(f'#failures [data-task-id="{task}"] .retried')
            assert AgentTask.objects.filter(retry_of_id=task, status="queued").count() == 1
            page.click(f'[data-runtime-id="{gone.id}"] button')
            page.wait_for_selector(f'[data-runtime-id="{gone.id}"]', state="detached")
            page.screenshot(path=ARTIFACTS / "3-after-restart.png", full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.context.add_cookies(page.context.cookies())
            phone.goto(page.url)
            phone.wait_for_selector("[data-runtime-id]")
            phone.screenshot(path=ARTIFACTS / "4-phone.png", full_page=True)
        finally:
            fleet.close()

        # Strangers: the anonymous to the login page, a non-member to a 404.
        anonymous = browser.new_page()
        anonymous.goto(f"{base}/workspaces/{workspace.id}/")
        assert anonymous.url == f"{base}/login/?next=/workspaces/{workspace.id}/"
        stranger = browser.new_context().new_page()
        log_in(stranger, base, "stranger")
        stranger.wait_for_url(f"{base}/")
        assert stranger.goto(f"{base}/workspaces/{workspace.id}/").status == 404
