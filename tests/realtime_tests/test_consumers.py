"""spec §3: who may listen on ws/workspaces/<id>/events/, and what members receive from the
real sweeps (real PostgreSQL, real Redis channel layer, the full ASGI stack)."""

import time
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction

from runtimes.changes import RuntimeChange
from runtimes.models import AgentRuntime
from runtimes.signals import runtimes_changed
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks
from tasks.models import AgentTask
from tests.helpers.websockets import communicator, event_body, listen, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def sweep_runtimes():
    return sweep_stale_runtimes(rules=Rules(stale_after=timedelta(seconds=45)))


def sweep_tasks():
    return sweep_stale_tasks(
        rules=Rules(
            dispatch_timeout=timedelta(seconds=300), running_timeout=timedelta(seconds=9000)
        )
    )


def envelope_checked(messages: list[dict]) -> list[dict]:
    """The messages without `seq` and `at`, once those are checked: seq 1, 2, ... in arrival
    order (a fresh workspace)."""
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    return [event_body(m) for m in messages]


def by_type(messages: list[dict]) -> dict[str, list[dict]]:
    grouped = {}
    for message in messages:
        grouped.setdefault(message["type"], []).append(message)
    return grouped


def refused_with(workspace_id, cookie=None) -> int:
    async def scenario():
        socket = communicator(workspace_id, cookie)
        connected, _ = await socket.connect()
        assert connected, "the handshake is accepted, so that the close code reaches a browser"
        closed = await socket.receive_output(timeout=2)
        await socket.disconnect()
        return closed

    closed = async_to_sync(scenario)()
    assert closed["type"] == "websocket.close"
    return closed["code"]


def test_member_receives_the_runtime_sweeps_events_with_exact_payloads(make, member):
    workspace, cookie = member
    runtime = make.runtime(workspace, seen_ago=60)
    agent = make.agent(runtime, status="working")
    task = make.task(agent, status="running", age=10)

    messages = envelope_checked(listen(workspace.id, cookie, sweep_runtimes, count=3))

    envelope = {"workspace_id": str(workspace.id), "actor_type": "system"}
    assert by_type(messages) == {
        "task:failed": [
            {
                "type": "task:failed",
                **envelope,
                "payload": {
                    "task_id": str(task.id),
                    "agent_id": str(agent.id),
                    "issue_id": str(task.issue_id),
                    "runtime_id": str(runtime.id),
                    "status": "failed",
                    "failure_reason": "runtime_offline",
                    "error": "runtime went offline: no heartbeat for 60 s (stale 45 s + grace 0 s)",
                    "retry_task_id": None,
                },
            }
        ],
        "daemon:register": [
            {
                "type": "daemon:register",
                **envelope,
                "payload": {"action": "stale_sweep", "runtime_ids": [str(runtime.id)]},
            }
        ],
        "agent:status": [
            {
                "type": "agent:status",
                **envelope,
                "payload": {"agent_id": str(agent.id), "status": "idle"},
            }
        ],
    }


def test_member_receives_a_timed_out_tasks_failure(make, member):
    workspace, cookie = member
    agent = make.agent(make.runtime(workspace), status="working")
    task = make.task(agent, status="dispatched", age=301)

    messages = by_type(listen(workspace.id, cookie, sweep_tasks, count=2))

    (failed,) = messages["task:failed"]
    assert failed["workspace_id"] == str(workspace.id)
    assert failed["payload"]["task_id"] == str(task.id)
    assert (failed["payload"]["failure_reason"], failed["payload"]["error"]) == (
        "timeout",
        "task timed out",
    )
    assert [m["payload"] for m in messages["agent:status"]] == [
        {"agent_id": str(agent.id), "status": "idle"}
    ]


def test_one_daemon_register_per_workspace_lists_all_its_runtimes(make, member):
    workspace, cookie = member
    runtimes = [make.runtime(workspace, seen_ago=60) for _ in range(3)]

    (message,) = listen(workspace.id, cookie, sweep_runtimes, count=1)

    assert message["type"] == "daemon:register"
    assert message["payload"]["action"] == "stale_sweep"
    assert sorted(message["payload"]["runtime_ids"]) == sorted(str(r.id) for r in runtimes)


def test_daemon_api_runtime_changes_reach_members(make, member):
    workspace, cookie = member
    runtime = make.runtime(workspace)

    def register():
        change = RuntimeChange(id=runtime.id, workspace_id=workspace.id)
        with transaction.atomic():
            runtimes_changed.send(sender=AgentRuntime, action="register", runtimes=[change])

    (message,) = envelope_checked(listen(workspace.id, cookie, register, count=1))

    assert message == {
        "type": "daemon:register",
        "workspace_id": str(workspace.id),
        "actor_type": "system",
        "payload": {"action": "register", "runtime_ids": [str(runtime.id)]},
    }


def test_another_workspaces_events_never_arrive(make, member):
    workspace, cookie = member
    other = make.workspace("other")
    for ws in (workspace, other, other):
        make.task(make.agent(make.runtime(ws, seen_ago=60), status="working"), status="running")

    # listen() checks that nothing arrives beyond these three
    messages = listen(workspace.id, cookie, sweep_runtimes, count=3)

    assert {m["workspace_id"] for m in messages} == {str(workspace.id)}
    assert AgentTask.objects.filter(status="failed").count() == 3


def test_a_rolled_back_sweep_sends_nothing(make, member):
    workspace, cookie = member
    runtime = make.runtime(workspace, seen_ago=60)
    make.task(make.agent(runtime, status="working"), status="running")

    def rolled_back_then_real():
        with transaction.atomic():
            sweep_runtimes()
            transaction.set_rollback(True)
        assert AgentRuntime.objects.get(pk=runtime.pk).status == "online"

    # Nothing from the rolled-back sweep: listen() would see a surplus message.
    assert listen(workspace.id, cookie, rolled_back_then_real, count=0) == []
    # The same socket setup does hear the real sweep, so the silence above was not deafness.
    assert len(listen(workspace.id, cookie, sweep_runtimes, count=3)) == 3


def test_a_mass_failure_arrives_as_one_message_per_task(make, member):
    workspace, cookie = member
    runtime = make.runtime(workspace, status="offline")
    agent = make.agent(runtime, status="working")
    tasks = AgentTask.objects.bulk_create(
        AgentTask(agent=agent, runtime=runtime, issue_id=uuid.uuid4(), status="queued")
        for _ in range(1201)
    )
    AgentTask.objects.update(status="dispatched", dispatched_at=runtime.created_at)

    messages = listen(workspace.id, cookie, sweep_runtimes, count=1202)

    failed = by_type(messages)["task:failed"]
    assert sorted(m["payload"]["task_id"] for m in failed) == sorted(str(t.id) for t in tasks)


def test_anonymous_client_is_closed_with_4401(make):
    assert refused_with(make.workspace().id) == 4401


def test_non_member_is_closed_with_4403(make, django_user_model):
    workspace = make.workspace()
    make.workspace("theirs").members.add(
        stranger := django_user_model.objects.create_user("stranger")
    )
    assert refused_with(workspace.id, session_cookie(stranger)) == 4403


@pytest.mark.parametrize("workspace_id", [uuid.UUID(int=7), "not-a-uuid"], ids=str)
def test_unknown_or_malformed_workspace_is_closed_with_4403(member, workspace_id):
    _, cookie = member
    assert refused_with(workspace_id, cookie) == 4403


def test_an_idle_socket_stays_open_and_still_hears_events(make, member):
    workspace, cookie = member
    make.runtime(workspace, seen_ago=60)

    def idle_then_sweep():
        # Longer than redis-py's default socket timeout (5 s) and channels-redis' blocking
        # receive (5 s): either would close an idle socket with 1011 if left in place.
        time.sleep(7)
        sweep_runtimes()

    (message,) = listen(workspace.id, cookie, idle_then_sweep, count=1)
    assert message["payload"]["action"] == "stale_sweep"
