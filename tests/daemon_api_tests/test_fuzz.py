"""Property-based fuzzing of the daemon API from its own OpenAPI schema (schemathesis), through
Django's test client against the real PostgreSQL: no request earns a 500, every answer is JSON
with a documented status, and a refused request changes no row and announces nothing."""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from daemon_api.schema import SCHEMA
from runtimes.models import Agent, AgentRuntime
from tasks.models import AgentTask
from tests.helpers.daemon_client import DaemonClient

pytestmark = pytest.mark.django_db

# Examples per operation and mode: 8 operations x 2 modes x 40 is a few hundred requests, a
# few seconds, and enough to reach every validation branch of these small bodies.
EXAMPLES = 40

schema = schemathesis.openapi.from_dict(SCHEMA)
OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA["paths"].items()
    for method in item
    if method in ("get", "post")
]


class World:
    """One workspace with work in every state, and a neighbour whose rows must stay out of
    reach; requests are pointed at these real rows often enough to get past the 404s."""

    def __init__(self, make, commits):
        self.daemon = DaemonClient(make.workspace(), commits=commits)
        mine = make.agent(make.runtime(self.daemon.workspace), max_concurrent_tasks=2)
        offline = make.runtime(self.daemon.workspace, provider="codex", status="offline")
        theirs = make.agent(make.runtime(make.workspace("other")))
        statuses = ["queued", "queued", "dispatched", "running", "completed", "failed"]
        tasks = [make.task(mine, status=s) for s in statuses]
        tasks += [make.task(theirs, status=s) for s in ("queued", "running")]
        self.runtime_ids = [str(i) for i in (mine.runtime_id, offline.id, theirs.runtime_id)]
        self.task_ids = [str(t.id) for t in tasks]
        self.workspace_ids = [str(self.daemon.workspace.id), str(theirs.workspace_id)]

    def aim(self, case, data) -> None:
        """Replaces generated ids with real ones, sometimes, wherever an id goes."""
        real = {
            "task_id": self.task_ids,
            "runtime_id": self.runtime_ids,
            "workspace_id": self.workspace_ids,
        }
        body = case.body if isinstance(case.body, dict) else {}
        for name, ids in real.items():
            for where in (case.path_parameters or {}, body):
                if name in where and data.draw(st.booleans()):
                    where[name] = data.draw(st.sampled_from(ids))
        if "runtime_ids" in body and data.draw(st.booleans()):
            body["runtime_ids"] = data.draw(st.lists(st.sampled_from(self.runtime_ids), min_size=1))

    def send(self, case, *, forged_auth: bool):
        """Sends with the real token, unless `forged_auth` keeps whatever the case made up."""
        headers = dict(case.headers or {})
        if not forged_auth:
            headers["Authorization"] = f"Bearer {self.daemon.token}"
        kwargs = {}
        if case.body is not schemathesis.core.NOT_SET:
            data = case.body if isinstance(case.body, bytes) else json.dumps(case.body)
            kwargs = {"data": data, "content_type": case.media_type}
        with self.daemon.commits(execute=True):
            return self.daemon.client.generic(
                case.method, case.formatted_path, headers=headers, **kwargs
            )


def snapshot() -> list:
    # DaemonToken.last_used_at is left out on purpose: it records any authenticated use,
    # refused or not, as a login time would.
    return [
        sorted(AgentRuntime.objects.values_list()),
        sorted(Agent.objects.values_list()),
        sorted(AgentTask.objects.values_list()),
    ]


def announcements(log) -> int:
    return len(log.runtimes_changed) + len(log.agents) + len(log.tasks_failed)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzed_requests_never_fail_the_server_and_refusals_change_nothing(
    make, django_capture_on_commit_callbacks, signal_log, method, path, mode
):
    world = World(make, django_capture_on_commit_callbacks)
    operation = schema[path][method]
    documented = set(SCHEMA["paths"][path][method.lower()]["responses"]) | {"405"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def check(case, data):
        world.aim(case, data)
        before, announced = snapshot(), announcements(signal_log)
        forged_auth = mode == GenerationMode.NEGATIVE and data.draw(st.booleans())
        response = world.send(case, forged_auth=forged_auth)
        assert response.status_code < 500
        assert str(response.status_code) in documented, response.content
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}
            assert snapshot() == before
            assert announcements(signal_log) == announced

    check()
