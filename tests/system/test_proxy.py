"""The production front door: nginx with docker-compose.yml's proxy config, in front of the web
process and daphne, all real processes on the test database and Redis. A heartbeat goes in over
HTTP and its event comes out of a browser-like WebSocket, both through the proxy."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from multica.processes import free_port
from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tests.helpers.websockets import session_cookie
from tools.servers import (
    SERVER_SECRET_KEY,
    daemon_post,
    nginx,
    nginx_binary,
    production_env,
    web_process,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not nginx_binary(), reason="nginx is not installed (.ci/run installs it)"),
]


def test_http_reaches_the_web_process_and_websockets_reach_daphne_through_the_proxy(
    make, django_user_model, settings
):
    workspace = make.workspace()
    member = django_user_model.objects.create_user("member")
    workspace.members.add(member)
    runtime = make.runtime(workspace, status="offline", seen_ago=600)
    token = issue_token(workspace=workspace)[1]
    # The session cookie is signed with the servers' key, which they check it with.
    settings.SECRET_KEY = SERVER_SECRET_KEY
    cookie = session_cookie(member)
    env = production_env(DATABASE_URL=database_url())
    port = free_port()
    with web_process("web", env) as web, web_process("ws", env) as ws, nginx(port, web, ws):
        heartbeat = json.dumps({"runtime_id": str(runtime.id)}).encode()

        async def scenario():
            url = f"ws://127.0.0.1:{port}/ws/workspaces/{workspace.id}/events/"
            headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
            async with connect(url, additional_headers=headers) as socket:
                hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert hello["type"] == "sync:hello"
                answer = await asyncio.to_thread(
                    daemon_post, port, "/api/daemon/heartbeat", heartbeat, token
                )
                return answer, json.loads(await asyncio.wait_for(socket.recv(), 10))

        (status, body), event = asyncio.run(scenario())
        assert status == 200, body
        assert event["type"] == "daemon:register"
        assert event["payload"] == {"action": "online", "runtime_ids": [str(runtime.id)]}

        # The proxy refuses a body far over the API's limit before reading it into the app.
        too_big = b'{"runtime_id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        status, body = daemon_post(port, "/api/daemon/heartbeat", too_big, token)
        assert status == 413
        assert b"nginx" in body
