"""What the processes write to their logs about hostile requests: no query string (a live
`?token=` was once logged whole), and a flood of bad tokens sampled, not a line each. Real
processes, their whole output read."""

import http.client
import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tools.servers import production_env, start, stop, wait_for_http

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def logged(name: str) -> Iterator[tuple[int, list[str]]]:
    """The process `name` ("web" or "ws") serving; yields its port and a list that holds its
    whole output once the block ends."""
    output: list[str] = []
    with tempfile.TemporaryFile("w+") as log:
        process, port = start(name, production_env(DATABASE_URL=database_url()), output=log)
        try:
            wait_for_http(port, process)
            yield port, output
        finally:
            stop(process)
            log.seek(0)
            output.append(log.read())


def send(client: http.client.HTTPConnection, method: str, path: str, token: str) -> int:
    body = json.dumps({"runtime_id": "00000000-0000-0000-0000-000000000000"})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    client.request(method, path, body=body if method == "POST" else None, headers=headers)
    response = client.getresponse()
    response.read()
    return response.status


@pytest.mark.parametrize("name", ["web", "ws"])
def test_a_token_in_a_query_string_reaches_no_log(make, name):
    secret = issue_token(workspace=make.workspace())[1]
    with logged(name) as (port, output):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = [
            send(client, "GET", f"/api/daemon/heartbeat?token={secret}", "bad"),
            send(client, "POST", f"/api/daemon/heartbeat?token={secret}", "bad"),
            send(client, "GET", f"/api/schema/?token={secret}", "bad"),
        ]
        client.close()

    assert statuses == [405, 401, 200]
    assert "/api/daemon/heartbeat" in output[0]  # the refusals were logged...
    assert secret not in output[0]  # ...without their query strings


def test_a_flood_of_bad_tokens_is_logged_a_line_a_second():
    with logged("web") as (port, output):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = {send(client, "POST", "/api/daemon/heartbeat", "bad") for _ in range(300)}
        time.sleep(1.1)
        statuses.add(send(client, "POST", "/api/daemon/heartbeat", "bad"))  # the last word
        client.close()

    lines = [line for line in output[0].splitlines() if "Unauthorized:" in line]
    held_back = [int(n) for n in re.findall(r"held_back=(\d+)", output[0])]
    assert statuses == {401}
    # 301 refusals in a few seconds: a line for the first, then one a second, each saying how
    # many it stands for; together, all of them.
    assert 2 <= len(lines) <= 10, lines
    assert len(held_back) == len(lines)
    assert len(lines) + sum(held_back) == 301
