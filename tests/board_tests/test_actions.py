"""The board's actions: Retry of a failed task (one new attempt, however many clicks), and
Dismiss of an offline runtime; members only, CSRF-checked, announced like every change."""

import pytest
from django.db.models.functions import Now
from django.test import Client

from runtimes.models import AgentRuntime
from tasks.models import AgentTask
from tests.helpers.db import seconds_ago
from tests.helpers.threads import together
from tests.helpers.websockets import event_body, listen, session_cookie

pytestmark = pytest.mark.django_db


def failed_task(make, workspace, **fields):
    agent = make.agent(make.runtime(workspace))
    fields.setdefault("failure_reason", "agent_error")
    return make.task(agent, status="failed", error="boom", completed_at=Now(), **fields)


def retry(client, task):
    return client.post(f"/api/workspaces/{task.agent.workspace_id}/tasks/{task.id}/retry")


def dismiss(client, runtime):
    return client.post(f"/api/workspaces/{runtime.workspace_id}/runtimes/{runtime.id}/dismiss")


def test_retry_queues_one_new_attempt_and_announces_it(
    browser, make, workspace, signal_log, django_capture_on_commit_callbacks
):
    task = failed_task(make, workspace, max_attempts=1)  # a person retries past the budget
    with django_capture_on_commit_callbacks(execute=True):
        answer = retry(browser, task)
    assert answer.status_code == 201
    new = AgentTask.objects.get(retry_of=task)
    assert answer.json() == {"task_id": str(new.id), "retry_of": str(task.id), "attempt": 2}
    assert (new.status, new.agent_id, new.runtime_id, new.issue_id, new.workspace_id) == (
        "queued", task.agent_id, task.runtime_id, task.issue_id, workspace.id,
    )  # fmt: skip
    assert [t.id for t in signal_log.tasks_queued] == [new.id]

    again = retry(browser, task)
    assert again.status_code == 409
    assert again.json() == {"error": f"task was retried already, as task {new.id}"}
    assert AgentTask.objects.filter(retry_of=task).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_make_one_new_task(make, member, django_user_model):
    workspace = make.workspace()
    workspace.members.add(member)
    task = failed_task(make, workspace)
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(member)
    statuses = together(*(lambda c=c: retry(c, task).status_code for c in clients))
    assert sorted(statuses) == [201, 409]
    assert AgentTask.objects.filter(retry_of=task).count() == 1


def test_retry_refuses_what_is_not_a_failure(browser, make, workspace):
    running = make.task(make.agent(make.runtime(workspace)), status="running")
    answer = retry(browser, running)
    assert (answer.status_code, answer.json()) == (409, {"error": "task is running, not failed"})
    orphan = failed_task(make, workspace)
    AgentTask.objects.filter(pk=orphan.pk).update(runtime=None)
    answer = retry(browser, orphan)
    assert answer.json() == {"error": "task's runtime is gone: nothing to queue it on"}
    assert AgentTask.objects.filter(status="queued").count() == 0


def test_actions_are_for_members_only_and_checked_for_csrf(
    client, make, workspace, member, django_user_model
):
    task = failed_task(make, workspace)
    assert retry(client, task).status_code == 401
    client.force_login(django_user_model.objects.create_user("stranger"))
    assert retry(client, task).status_code == 404
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(member)
    assert retry(guarded, task).status_code == 403
    assert guarded.get(f"/api/workspaces/{workspace.id}/tasks").status_code == 200
    other = failed_task(make, make.workspace("other"))
    browser = Client()
    browser.force_login(member)
    answer = browser.post(f"/api/workspaces/{workspace.id}/tasks/{other.id}/retry")
    assert (answer.status_code, answer.json()) == (404, {"error": "task not found"})
    assert not AgentTask.objects.filter(status="queued").exists()


def runtime_ids(client, workspace):
    answer = client.get(f"/api/workspaces/{workspace.id}/runtimes").json()
    return [r["id"] for r in answer["runtimes"]]


def test_dismiss_hides_an_offline_runtime_until_it_comes_back_and_goes_again(
    browser, make, workspace, signal_log, django_capture_on_commit_callbacks
):
    gone = make.runtime(workspace, status="offline", seen_ago=600, daemon_id="a")
    AgentRuntime.objects.filter(pk=gone.pk).update(offline_at=seconds_ago(500))
    with django_capture_on_commit_callbacks(execute=True):
        answer = dismiss(browser, gone)
    assert answer.json() == {"runtime_id": str(gone.id), "dismissed": True}
    assert [(a, r.id) for a, r in signal_log.runtimes_changed] == [("dismiss", gone.id)]
    assert runtime_ids(browser, workspace) == []
    again = dismiss(browser, gone)
    assert (again.status_code, again.json()) == (409, {"error": "runtime is dismissed already"})

    AgentRuntime.objects.filter(pk=gone.pk).update(status="online", last_seen_at=Now())
    assert runtime_ids(browser, workspace) == [str(gone.id)]
    AgentRuntime.objects.filter(pk=gone.pk).update(status="offline", offline_at=Now())
    assert runtime_ids(browser, workspace) == [str(gone.id)]


def test_dismiss_refuses_an_online_runtime(browser, make, workspace):
    online = make.runtime(workspace)
    answer = dismiss(browser, online)
    assert answer.status_code == 409
    assert answer.json() == {"error": "runtime is online: only an offline runtime can be dismissed"}
    assert runtime_ids(browser, workspace) == [str(online.id)]


@pytest.mark.django_db(transaction=True)
def test_the_actions_reach_the_workspaces_socket(make, member):
    workspace = make.workspace()
    workspace.members.add(member)
    task = failed_task(make, workspace)
    gone = make.runtime(workspace, status="offline", seen_ago=600, daemon_id="gone")
    browser = Client()
    browser.force_login(member)

    def click_both():
        retry(browser, task)
        dismiss(browser, gone)

    messages = listen(workspace.id, session_cookie(member), click_both, count=2)
    queued, dismissed = (event_body(m) for m in messages)
    new = AgentTask.objects.get(retry_of=task)
    assert queued == {
        "type": "task:queued",
        "workspace_id": str(workspace.id),
        "actor_type": "system",
        "payload": {
            "task_id": str(new.id),
            "agent_id": str(task.agent_id),
            "issue_id": str(task.issue_id),
            "runtime_id": str(task.runtime_id),
            "status": "queued",
            "retry_of": str(task.id),
            "attempt": 2,
        },
    }
    assert dismissed["type"] == "daemon:register"
    assert dismissed["payload"] == {"action": "dismiss", "runtime_ids": [str(gone.id)]}
