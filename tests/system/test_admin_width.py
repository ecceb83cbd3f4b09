"""The admin's lists in a real browser (headless Chromium) 1280 px wide: each list fits beside
its filters without scrolling sideways, and no name breaks over two lines."""

import os
import shutil
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import sync_playwright

from runtimes.models import Workspace
from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tests.helpers.websockets import session_cookie
from tools.servers import web_process

pytestmark = pytest.mark.django_db(transaction=True)

DAYS = timedelta(days=90)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LISTS = [
    "runtimes/agentruntime",
    "runtimes/agent",
    "runtimes/workspace",
    "runtimes/daemontoken",
    "tasks/agenttask",
    "sweeper/sweeperstate",
]
# Cells whose text is a name, an id or a time: one line each.
ONE_LINE = ", ".join(
    f"#result_list td.{name}"
    for name in ("field-name", "field-agent", "field-runtime", "field-runtime_name", "nowrap",
                 "field-workspace", "field-daemon_id", "field-short_id", "field-status_and_reason")
)  # fmt: skip
MEASURE = """(selector) => {
  const results = document.querySelector('.results');
  const table = document.querySelector('#result_list');
  const wrapped = [...document.querySelectorAll(selector)]
    .filter(cell => {
      const range = document.createRange(); range.selectNodeContents(cell);
      return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1; })
    .map(cell => cell.className + ': ' + cell.innerText);
  return {overflow: table ? table.scrollWidth - results.clientWidth : 0, wrapped};
}"""


def test_admin_lists_fit_1280_px_without_names_wrapping(django_user_model):
    call_command("seed_demo", "--quiet", stdout=StringIO())
    call_command("sweep", stdout=StringIO())
    admin = django_user_model.objects.get(username="demo")
    issue_token(workspace=Workspace.objects.get(), name="alice's laptop daemon", expires_in=DAYS)
    cookie = session_cookie(admin)
    env = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "1"}
    measured = {}
    with web_process("ws", env) as port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(
            [{"name": "sessionid", "value": cookie, "url": f"http://127.0.0.1:{port}"}]
        )
        page = context.new_page()
        for path in LISTS:
            page.goto(f"http://127.0.0.1:{port}/admin/{path}/")
            assert page.locator("#result_list, .paginator").first.is_visible(), path
            measured[path] = page.evaluate(MEASURE, ONE_LINE)
        browser.close()
    assert measured == {path: {"overflow": 0, "wrapped": []} for path in LISTS}
