"""The dead-man's switch with the real processes: daphne, a Celery worker and beat on the test
database. /health/sweeper answers 200 while beat's sweeps succeed, 503 once beat has been gone
for three intervals, and 200 again when it is back."""

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers.stack import production_stack
from tools.servers import redis_server

pytestmark = pytest.mark.django_db(transaction=True)

# A sweep every second: the switch trips after 3 s without one.
SETTINGS = {
    "SWEEP_INTERVAL_SECONDS": "1",
    "RUNTIME_STALE_SECONDS": "3",
    "RUNTIME_HEARTBEAT_SECONDS": "1",
    "DEBUG": "1",
}


def sweeper_health(port: int) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{port}/health/sweeper"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def wait_for_status(port: int, status: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            answered, body = sweeper_health(port)
        except (TimeoutError, urllib.error.URLError) as exc:
            # The port is bound before daphne starts: it accepts, and answers once it is up.
            answered, body = None, repr(exc)
        if answered == status:
            return body
        assert time.monotonic() < deadline, f"still {answered} {body}, waited for {status}"
        time.sleep(0.2)


def test_sweeper_health_fails_while_beat_is_down_and_recovers_with_it(tmp_path):
    with (
        redis_server() as broker,
        production_stack(tmp_path, broker.url, SETTINGS) as stack,
    ):
        wait_for_status(stack.port, 200)
        stack.stop("beat")
        failing = wait_for_status(stack.port, 503)
        assert failing["reasons"], failing
        assert all("sweep last succeeded" in reason for reason in failing["reasons"]), failing
        stack.start("beat")
        assert wait_for_status(stack.port, 200)["reasons"] == []
