"""Claims at once from many threads, each on its own connection to the real PostgreSQL: no task
is handed out twice and no agent goes over its limit, at any committed moment."""

from collections import Counter

import pytest
from django.db import connection

from runtimes.models import Agent
from tasks.models import AgentTask
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.threads import together

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
LIMIT = 2


@pytest.fixture
def queue(make):
    """Three agents on one runtime, limit 2 each, with six queued tasks apiece."""
    runtime = make.runtime(make.workspace())
    agents = [
        make.agent(runtime, name=f"agent {i}", status="idle", max_concurrent_tasks=LIMIT)
        for i in range(3)
    ]
    for agent in agents:
        for priority in range(6):
            make.task(agent, priority=priority)
    return runtime, agents


def busiest_agent() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM agent_task"
            " WHERE status IN ('dispatched', 'running') GROUP BY agent_id) AS busy"
        )
        return cursor.fetchone()[0]


def run_daemons(runtime, work) -> list:
    """Runs `work(daemon)` in THREADS threads released together; returns what each returned."""
    return together(*[lambda: work(DaemonClient(runtime.workspace))] * THREADS)


def test_concurrent_claims_never_share_a_task_nor_exceed_an_agents_limit(queue, signal_log):
    runtime, agents = queue

    def claim_until_empty(daemon):
        claimed = []
        while task := daemon.post(f"runtimes/{runtime.id}/tasks/claim").json()["task"]:
            claimed.append(task["id"])
        return claimed

    claimed = [t for ts in run_daemons(runtime, claim_until_empty) for t in ts]

    assert len(claimed) == len(set(claimed)) == 3 * LIMIT
    assert busiest_agent() == LIMIT
    dispatched = AgentTask.objects.filter(status="dispatched").values_list("id", flat=True)
    assert {str(t) for t in dispatched} == set(claimed)
    assert sorted(a.id for a in signal_log.agents) == sorted(a.id for a in agents)
    assert set(Agent.objects.values_list("status", flat=True)) == {"working"}


def test_claiming_and_completing_at_once_drains_the_queue_within_limits(queue):
    runtime, _ = queue

    def work_until_empty(daemon):
        done, worst = [], 0
        while task := daemon.post(f"runtimes/{runtime.id}/tasks/claim").json()["task"]:
            worst = max(worst, busiest_agent())
            assert daemon.post(f"tasks/{task['id']}/start").status_code == 200
            assert daemon.post(f"tasks/{task['id']}/complete", {"result": {}}).status_code == 200
            done.append(task["id"])
        return done, worst

    results = run_daemons(runtime, work_until_empty)

    done = Counter(t for ts, _ in results for t in ts)
    assert len(done) == 18
    assert set(done.values()) == {1}
    assert max(worst for _, worst in results) <= LIMIT
    assert set(AgentTask.objects.values_list("status", flat=True)) == {"completed"}
    assert set(Agent.objects.values_list("status", flat=True)) == {"idle"}
