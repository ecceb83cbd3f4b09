"""realtime/tasks.py: beat's catch-up delivers what a process killed between commit and
publish left behind (a real child process, SIGKILLed; a real Celery worker), and pruning deletes
published events past the retention, in chunks."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from outbox import relay, replay
from outbox.models import Event, Head
from outbox.prune import prune_events
from outbox.record import record
from outbox.wire import event
from realtime import tasks
from runtimes.models import AgentRuntime
from tests.helpers.db import database_url
from tests.helpers.outbox import group_listener, silent_server
from tests.helpers.workers import app_on, wait_until, worker
from tools.servers import BASE_DIR

pytestmark = pytest.mark.django_db(transaction=True)

# A sweep whose relay, right after the chunk commits, hangs publishing (its Redis never
# answers): the process is killed there, between the commit and the publish.
SWEEP_THEN_HANG = """
import django
django.setup()
from datetime import timedelta
from outbox import relay
relay.PUBLISH_TIMEOUT_SECONDS = 600
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes
sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)))
"""


def relay_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s",
            [relay.LOCK_SPACE, relay.LOCK_KEY],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_between_commit_and_publish_is_caught_up_by_beats_task(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace, seen_ago=60)
    task = make.task(make.agent(runtime, status="working"), status="running")
    with group_listener(workspace.id) as listener:
        kill_between_commit_and_publish(runtime)
        assert Event.objects.unpublished().count() == 3
        assert listener.messages_left() == 0  # the killed process published nothing
        with app_on(settings.REDIS_URL) as app, worker(app):
            deadline = time.monotonic() + 10  # the server frees the dead session's lock at once
            while relay_lock_held():
                assert time.monotonic() < deadline
                time.sleep(0.05)
            app.send_task(tasks.relay_events.name)
            events = listener.events(3)

    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["type"] for e in events] == ["daemon:register", "task:failed", "agent:status"]
    assert events[1]["payload"]["task_id"] == str(task.id)
    assert not Event.objects.unpublished().exists()


def kill_between_commit_and_publish(runtime) -> None:
    with silent_server() as port:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        }
        child = subprocess.Popen([sys.executable, "-c", SWEEP_THEN_HANG], cwd=BASE_DIR, env=env)
        try:
            wait_until(lambda: AgentRuntime.objects.get(pk=runtime.pk).status == "offline")
            wait_until(relay_lock_held)  # committed, and stuck publishing
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            child.kill()
            child.wait()


def recorded(workspace_id, count: int) -> None:
    with transaction.atomic():
        record(event("agent:status", workspace_id, {"n": n}) for n in range(count))


def test_pruning_deletes_published_events_past_the_retention_in_chunks(make):
    workspace = make.workspace()
    recorded(workspace.id, 7)
    recorded(workspace.id, 3)
    two_days_ago = Now() - timedelta(days=2)
    Event.objects.filter(seq__lte=5).update(at=two_days_ago)
    # Old, but never delivered from 5 on: kept for the relay.
    Head.objects.filter(workspace_id=workspace.id).update(published_seq=4)

    with CaptureQueriesContext(connection) as queries:
        pruned = prune_events(retention=timedelta(days=1), chunk_size=2)

    assert pruned == 4
    deletes = [q for q in queries.captured_queries if q["sql"].lstrip().startswith("DELETE")]
    assert len(deletes) == 3  # 2, 2, then a short chunk: done
    assert sorted(Event.objects.values_list("seq", flat=True)) == [5, 6, 7, 8, 9, 10]
    assert replay.oldest_seq(workspace.id) == 5
    assert replay.head_seq(workspace.id) == 10


def test_beats_pruning_task_uses_the_retention_setting(make, settings):
    settings.EVENT_RETENTION_SECONDS = 3600
    workspace = make.workspace()
    recorded(workspace.id, 2)
    Event.objects.filter(seq=1).update(at=Now() - timedelta(hours=2))

    assert tasks.prune_events() == 1
    assert list(Event.objects.values_list("seq", flat=True)) == [2]
