"""What the processes write to their logs about hostile requests: no query string (a live
`?token=` was once logged whole), and a flood of bad tokens sampled, not a line each. Real
processes, their whole output read."""

import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tests.helpers.proxy import request
from tools.servers import production_env, start, stop, wait_for_http

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def logged(name: str) -> Iterator[tuple[int, list[str]]]:
    """The process `name` ("web" or "ws") serving; yields its port and a list that holds its
    whole output once the block ends. One worker: the sampling is per process."""
    output: list[str] = []
    env = production_env(DATABASE_URL=database_url(), WEB_WORKERS="1")
    with tempfile.TemporaryFile("w+") as log:
        process, port = start(name, env, output=log)
        try:
            wait_for_http(port, process)
            yield port, output
        finally:
            stop(process)
            log.seek(0)
            output.append(log.read())


def send(port: int, method: str, path: str, token: str) -> int:
    """On a connection of its own: a refusal sent before the body is read may close it."""
    body = json.dumps({"runtime_id": "00000000-0000-0000-0000-000000000000"}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return request(port, method, path, body if method == "POST" else None, headers)[0]


@pytest.mark.parametrize("name", ["web", "ws"])
def test_a_token_in_a_query_string_reaches_no_log(make, name):
    secret = issue_token(workspace=make.workspace())[1]
    with logged(name) as (port, output):
        statuses = [
            send(port, "GET", f"/api/daemon/heartbeat?token={secret}", "bad"),
            send(port, "POST", f"/api/daemon/heartbeat?token={secret}", "bad"),
            send(port, "GET", f"/api/schema/?token={secret}", "bad"),
        ]

    assert statuses == [405, 401, 200]
    assert "/api/daemon/heartbeat" in output[0]  # the refusals were logged...
    assert secret not in output[0]  # ...without their query strings


def test_a_flood_of_bad_tokens_is_logged_a_line_a_second():
    with logged("web") as (port, output):
        statuses = {send(port, "POST", "/api/daemon/heartbeat", "bad") for _ in range(300)}
        time.sleep(1.1)
        statuses.add(send(port, "POST", "/api/daemon/heartbeat", "bad"))  # the last word

    lines = [line for line in output[0].splitlines() if "Unauthorized:" in line]
    held_back = [int(n) for n in re.findall(r"held_back=(\d+)", output[0])]
    assert statuses == {401}
    # 301 refusals in a few seconds: a line for the first, then one a second, each saying how
    # many it stands for; together, all of them.
    assert 2 <= len(lines) <= 10, lines
    assert len(held_back) == len(lines)
    assert len(lines) + sum(held_back) == 301
