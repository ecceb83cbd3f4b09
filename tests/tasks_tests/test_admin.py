"""tasks/admin.py: what the task list shows, what an operator may not edit, and that a page
costs the same few queries however many rows there are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks.admin import ERROR_PREVIEW_CHARS
from tasks.models import AgentTask

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_agenttask_changelist")


def fail(task, reason: str, error: str) -> AgentTask:
    AgentTask.objects.filter(pk=task.pk).update(status="failed", failure_reason=reason, error=error)
    task.refresh_from_db()
    return task


def listed(response) -> list[AgentTask]:
    return list(response.context["cl"].result_list)


def test_changelist_shows_status_reason_error_agent_and_runtime(admin_client, make):
    runtime = make.runtime(name="build-box")
    agent = make.agent(runtime, name="coder-7")
    fail(make.task(agent, status="running", age=30), "timeout", "task timed out")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("failed", "timeout", "task timed out", "coder-7", "build-box"):
        assert text in html


def test_long_errors_are_truncated_in_the_list(admin_client, make):
    error = "x" * (ERROR_PREVIEW_CHARS - 1) + "TAIL-OF-A-LONG-TRACEBACK"
    fail(make.task(status="running"), "agent_error", error)

    html = admin_client.get(CHANGELIST).content.decode()

    assert "x" * (ERROR_PREVIEW_CHARS - 1) in html
    assert "TAIL-OF-A-LONG-TRACEBACK" not in html


def test_newest_tasks_come_first(admin_client, make):
    agent = make.agent()
    old = make.task(agent)
    AgentTask.objects.filter(pk=old.pk).update(created_at=old.created_at.replace(year=2020))
    new = make.task(agent)

    assert [t.pk for t in listed(admin_client.get(CHANGELIST))] == [new.pk, old.pk]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, {"timed-out", "offline"}),
        ({"status__exact": "queued"}, {"waiting"}),
        ({"failure_reason__exact": "timeout"}, {"timed-out"}),
        ({"failure_reason__exact": "runtime_offline"}, {"offline"}),
    ],
)
def test_filter_by_status_and_failure_reason(admin_client, make, params, expected):
    agent = make.agent()
    by_label = {
        "timed-out": fail(make.task(agent, status="running"), "timeout", "task timed out"),
        "offline": fail(make.task(agent, status="running"), "runtime_offline", "gone"),
        "waiting": make.task(agent),
    }

    response = admin_client.get(CHANGELIST, params)

    label_of = {task.pk: label for label, task in by_label.items()}
    assert {label_of[t.pk] for t in listed(response)} == expected


def test_sweeper_owned_fields_are_read_only(admin_client, make):
    task = make.task(status="running", age=60)
    url = reverse("admin:tasks_agenttask_change", args=[task.pk])

    form = admin_client.get(url).context["adminform"].form
    owned = {"status", "failure_reason", "error", "dispatched_at", "started_at", "completed_at"}
    assert owned.isdisjoint(form.fields)

    response = admin_client.post(url, change_post(task, priority="9"))

    assert response.status_code == 302
    after = AgentTask.objects.get(pk=task.pk)
    assert after.priority == 9
    assert (after.status, after.failure_reason, after.error) == ("running", "", "")
    assert (after.started_at, after.completed_at) == (task.started_at, None)


def change_post(task, **changes) -> dict:
    data = {
        "agent": task.agent_id,
        "runtime": task.runtime_id,
        "issue_id": task.issue_id,
        "priority": task.priority,
        "result": "",
        # Attempts on read-only fields, which the form must ignore.
        "status": "failed",
        "failure_reason": "timeout",
        "error": "edited by hand",
        "completed_at_0": "2000-01-01",
        "completed_at_1": "00:00:00",
    }
    return data | changes


def test_change_form_does_not_list_every_agent_or_runtime(admin_client, make):
    task = make.task(make.agent(make.runtime(name="mine"), name="my-agent"))
    make.agent(make.runtime(name="someone-elses-runtime"), name="someone-elses-agent")

    response = admin_client.get(reverse("admin:tasks_agenttask_change", args=[task.pk]))

    html = response.content.decode()
    assert html.count("admin-autocomplete") >= 2
    assert "someone-elses" not in html


def count_changelist_queries(client, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "params", [{}, {"status__exact": "failed"}, {"failure_reason__exact": "timeout"}]
)
def test_changelist_queries_do_not_grow_with_rows(admin_client, make, params):
    def add_tasks(n):
        # A runtime and an agent each, so a per-row lookup of either would show.
        for _ in range(n):
            fail(make.task(status="running"), "timeout", "task timed out")

    add_tasks(5)
    few = count_changelist_queries(admin_client, params)
    add_tasks(45)
    many = count_changelist_queries(admin_client, params)

    assert len(listed(admin_client.get(CHANGELIST, params))) == 50
    assert many == few
