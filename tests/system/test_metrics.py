"""/metrics from the real processes: the production web process adding up its workers'
heartbeat counts, and daphne showing what a real Celery worker's sweep did, read from the
database it wrote."""

import json
import time
from contextlib import suppress
from urllib.error import URLError

import pytest

from runtimes.tokens import issue_token
from tests.helpers.db import database_url
from tests.helpers.scrape import scrape, value
from tests.helpers.stack import production_stack
from tools.servers import daemon_post, production_env, redis_server, web_process

pytestmark = pytest.mark.django_db(transaction=True)

SWEEPING = {
    "SWEEP_INTERVAL_SECONDS": "1",
    "RUNTIME_STALE_SECONDS": "3",
    "RUNTIME_HEARTBEAT_SECONDS": "1",
    "RUNTIME_RECONNECT_GRACE_SECONDS": "0",
    "TASK_MAX_ATTEMPTS": "1",
    "DEBUG": "1",
}


def test_the_web_process_counts_every_workers_heartbeats(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    token = issue_token(workspace=workspace)[1]
    env = production_env(
        DATABASE_URL=database_url(), WEB_WORKERS="2", WEB_THREADS="2", METRICS_TOKEN="scrape-me"
    )
    body = json.dumps({"runtime_id": str(runtime.id)}).encode()
    with web_process("web", env) as port:
        # A connection each: the kernel spreads them over both workers' listening sockets.
        for _ in range(40):
            assert daemon_post(port, "/api/daemon/heartbeat", body, token)[0] == 200
        assert daemon_post(port, "/api/daemon/heartbeat", body, "wrong")[0] == 401
        scraped = scrape(port, token="scrape-me")
    assert value(scraped, "multica_heartbeats_total", result="ok") == 40
    assert value(scraped, "multica_heartbeats_total", result="unauthorized") == 1


def test_metrics_show_what_a_real_workers_sweep_did(make, tmp_path):
    stale = make.runtime(seen_ago=600)
    make.task(make.agent(stale, status="working"), status="running")
    with redis_server() as broker, production_stack(tmp_path, broker.url, SWEEPING) as stack:
        deadline = time.monotonic() + 90
        while True:
            # A busy machine: ask again. The chunk's counts commit before the sweep's duration,
            # which is recorded once the whole sweep is done (KeyError until then).
            with suppress(TimeoutError, URLError, KeyError):
                scraped = scrape(stack.port)
                if value(scraped, "multica_tasks_failed_total", reason="runtime_offline") and value(
                    scraped, "multica_sweep_duration_seconds_count", sweep="runtimes"
                ):
                    break
            assert time.monotonic() < deadline, "no sweep counted in time"
            time.sleep(0.3)
    assert value(scraped, "multica_runtimes_marked_offline_total") == 1
    assert value(scraped, "multica_tasks_failed_total", reason="runtime_offline") == 1
    assert value(scraped, "multica_runtimes", status="offline") == 1
    assert value(scraped, "multica_sweep_duration_seconds_count", sweep="runtimes") >= 1
    assert value(scraped, "multica_sweep_last_success_timestamp_seconds", sweep="tasks") > 0
