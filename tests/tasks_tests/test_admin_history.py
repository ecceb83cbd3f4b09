"""tasks/admin.py for operators: history the sweeper wrote stays as it was written; tasks are
found by task or issue id and filtered by runtime, workspace and contradicted verdicts; times
show seconds and the time zone."""

import re

import pytest
from django.urls import reverse

from tasks.models import AgentTask

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_agenttask_changelist")


def failed_task(make, **fields) -> AgentTask:
    task = make.task(status="running", **fields)
    AgentTask.objects.filter(pk=task.pk).update(
        status="failed", failure_reason="runtime_offline", error="runtime went offline"
    )
    task.refresh_from_db()
    return task


def listed_ids(admin_client, **params) -> set:
    response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {task.pk for task in response.context["cl"].result_list}


def test_a_failed_task_cannot_be_changed(admin_client, make):
    task = failed_task(make)
    url = reverse("admin:tasks_agenttask_change", args=[task.pk])
    assert admin_client.get(url).context["has_change_permission"] is False
    response = admin_client.post(url, {"priority": "9", "issue_id": str(task.issue_id)})
    assert response.status_code == 403
    task.refresh_from_db()
    assert (task.status, task.priority) == ("failed", 0)


def test_tasks_are_neither_added_nor_deleted_in_the_admin(admin_client, make):
    task = failed_task(make)
    assert admin_client.get(reverse("admin:tasks_agenttask_add")).status_code == 403
    delete = reverse("admin:tasks_agenttask_delete", args=[task.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"}
    )
    assert response.status_code == 200  # "no action selected": there is no such action
    assert AgentTask.objects.filter(pk=task.pk).exists()


def test_search_by_task_id_issue_id_or_their_first_characters(admin_client, make):
    task, other = make.task(), make.task()
    assert listed_ids(admin_client, q=str(task.pk)) == {task.pk}
    assert listed_ids(admin_client, q=str(task.issue_id)) == {task.pk}
    assert listed_ids(admin_client, q=str(task.pk)[:8]) == {task.pk}
    assert listed_ids(admin_client, q=str(other.issue_id)[:13].upper()) == {other.pk}
    assert listed_ids(admin_client, q="not an id") == set()


def test_filter_by_runtime_and_by_workspace(admin_client, make):
    here = make.workspace("here")
    runtime = make.runtime(here)
    mine = make.task(make.agent(runtime))
    beside = make.task(make.agent(make.runtime(here, provider="codex")))
    elsewhere = make.task()
    assert listed_ids(admin_client, runtime=str(runtime.pk)) == {mine.pk}
    assert listed_ids(admin_client, workspace=str(here.pk)) == {mine.pk, beside.pk}
    assert elsewhere.pk not in listed_ids(admin_client, workspace=str(here.pk))
    assert listed_ids(admin_client, runtime="nonsense") == set()


def test_the_runtime_and_workspace_lists_link_to_their_tasks(admin_client, make):
    runtime = make.runtime()
    html = admin_client.get(reverse("admin:runtimes_agentruntime_changelist")).content.decode()
    assert f"{CHANGELIST}?runtime={runtime.pk}" in html
    html = admin_client.get(reverse("admin:runtimes_workspace_changelist")).content.decode()
    assert f"{CHANGELIST}?workspace={runtime.workspace_id}" in html


def test_filter_to_contradicted_verdicts(admin_client, make):
    contradicted, plain = failed_task(make), failed_task(make)
    AgentTask.objects.filter(pk=contradicted.pk).update(
        contradicted_at=contradicted.created_at, contradicting_report={"status": "completed"}
    )
    assert listed_ids(admin_client, contradicted="yes") == {contradicted.pk}
    assert plain.pk in listed_ids(admin_client, contradicted="no")


def test_times_show_seconds_and_the_time_zone(admin_client, make):
    task = failed_task(make)
    html = admin_client.get(CHANGELIST).content.decode()
    shown = task.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert shown in html
    change = admin_client.get(reverse("admin:tasks_agenttask_change", args=[task.pk]))
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", change.content.decode())


def test_view_site_goes_to_the_board(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert '<a href="/">View site</a>' in html
