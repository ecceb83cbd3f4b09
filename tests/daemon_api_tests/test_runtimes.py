"""The runtime endpoints: register, heartbeat, deregister, and the refusals around them."""

import uuid

import pytest
from django.db import connection
from django.db.models.functions import Now

from runtimes import queries
from runtimes.changes import RuntimeChange
from runtimes.models import AgentRuntime, DaemonToken
from runtimes.tokens import issue_token
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.db import db_now, seconds_ago

pytestmark = pytest.mark.django_db


def snapshot():
    return sorted(AgentRuntime.objects.values_list("id", "status", "last_seen_at", "offline_at"))


# --- register ---------------------------------------------------------------------------------


def test_register_creates_one_online_runtime_per_provider_seen_now(daemon, signal_log):
    runtimes = daemon.register("claude", "codex")

    assert [(r["name"], r["provider"], r["status"]) for r in runtimes] == [
        ("laptop claude", "claude", "online"),
        ("laptop codex", "codex", "online"),
    ]
    rows = AgentRuntime.objects.filter(id__in=[r["id"] for r in runtimes])
    assert {(r.workspace_id, r.daemon_id, r.device_name, r.version) for r in rows} == {
        (daemon.workspace.id, "daemon-1", "laptop", "1.0")
    }
    assert {r.last_seen_at for r in rows} == {db_now()}
    assert sorted((a, str(r.id)) for a, r in signal_log.runtimes_changed) == sorted(
        ("register", r["id"]) for r in runtimes
    )


def test_register_again_upserts_and_brings_an_offline_runtime_back(daemon, make, signal_log):
    runtime = make.runtime(
        daemon.workspace, daemon_id="daemon-1", provider="claude", status="offline", seen_ago=600
    )
    AgentRuntime.objects.filter(id=runtime.id).update(offline_at=Now())

    (registered,) = daemon.register("claude")

    runtime.refresh_from_db()
    assert registered == {
        "id": str(runtime.id),
        "name": "laptop claude",
        "provider": "claude",
        "status": "online",
    }
    assert (runtime.status, runtime.offline_at, runtime.last_seen_at) == ("online", None, db_now())
    assert signal_log.runtimes_changed == [
        ("register", RuntimeChange(id=runtime.id, workspace_id=daemon.workspace.id))
    ]


def test_register_for_another_workspace_is_not_found(daemon, make, signal_log):
    body = daemon.register_body("claude")
    body["workspace_id"] = str(make.workspace("other").id)

    response = daemon.post("register", body)

    assert response.status_code == 404
    assert response.json() == {"error": "workspace not found"}
    assert not AgentRuntime.objects.exists()
    assert signal_log.runtimes_changed == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("daemon_id"), "daemon_id: required string"),
        (lambda b: b.update(daemon_id=7), "daemon_id: required string"),
        (lambda b: b.update(daemon_id=""), "daemon_id: must not be empty"),
        (lambda b: b.update(daemon_id="x" * 201), "daemon_id: longer than 200 characters"),
        (lambda b: b.update(workspace_id="not-a-uuid"), "workspace_id: not a UUID"),
        (lambda b: b.update(runtimes=[]), "runtimes: required non-empty array"),
        (lambda b: b.update(runtimes=["claude"]), "runtimes: each item must be an object"),
        (lambda b: b["runtimes"][0].pop("provider"), "provider: required string"),
        (
            lambda b: b["runtimes"].append(dict(b["runtimes"][0])),
            "runtimes: one entry per provider",
        ),
        (
            lambda b: b.update(device_name="a\x00b"),
            "strings must not contain NUL characters or lone surrogates",
        ),
    ],
)
def test_register_refuses_a_malformed_body_and_changes_nothing(daemon, change, message):
    body = daemon.register_body("claude")
    change(body)

    response = daemon.post("register", body)

    assert (response.status_code, response.json()) == (400, {"error": message})
    assert not AgentRuntime.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b'{"runtime_id": NaN}', "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON"),
        (
            b'{"runtime_id": "\\ud800"}',
            "strings must not contain NUL characters or lone surrogates",
        ),
    ],
)
def test_unreadable_json_is_a_bad_request(daemon, raw, message):
    response = daemon.post("heartbeat", raw=raw)

    assert (response.status_code, response.json()) == (400, {"error": message})


def test_an_oversized_body_is_refused_unread(daemon, make):
    runtime = make.runtime(daemon.workspace, seen_ago=60)
    body = {"runtime_id": str(runtime.id), "padding": "x" * 300_000}
    before = snapshot()

    response = daemon.post("heartbeat", body)

    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 262144 bytes"}
    assert snapshot() == before


# --- heartbeat ------------------------------------------------------------------------------


def test_heartbeat_keeps_an_online_runtime_seen_now_and_announces_nothing(daemon, make, signal_log):
    runtime = make.runtime(daemon.workspace, seen_ago=30)

    response = daemon.post("heartbeat", {"runtime_id": str(runtime.id)})

    assert response.json() == {"id": str(runtime.id), "status": "online"}
    runtime.refresh_from_db()
    assert (runtime.status, runtime.last_seen_at) == ("online", db_now())
    assert signal_log.runtimes_changed == []


def test_heartbeat_brings_an_offline_runtime_back_and_announces_it(daemon, make, signal_log):
    runtime = make.runtime(daemon.workspace, seen_ago=600, status="offline", offline_at=Now())

    response = daemon.post("heartbeat", {"runtime_id": str(runtime.id)})

    assert response.status_code == 200
    runtime.refresh_from_db()
    assert (runtime.status, runtime.offline_at, runtime.last_seen_at) == ("online", None, db_now())
    assert signal_log.runtimes_changed == [
        ("online", RuntimeChange(id=runtime.id, workspace_id=daemon.workspace.id))
    ]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_is_planned_once_per_database_connection(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace)
    daemon = DaemonClient(workspace)

    def beat_and_count_runs() -> list[tuple]:
        assert daemon.post("heartbeat", {"runtime_id": str(runtime.id)}).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements")
            return cursor.fetchall()

    # Online: only the one-statement form runs.
    assert [beat_and_count_runs() for _ in range(3)] == [
        [("runtime_heartbeat_online", n)] for n in (1, 2, 3)
    ]
    connection.close()  # a new session has no prepared statement: it is prepared again
    assert beat_and_count_runs() == [("runtime_heartbeat_online", 1)]
    AgentRuntime.objects.filter(id=runtime.id).update(status="offline", offline_at=Now())
    # A comeback: the one-statement form finds no online runtime, and the transaction's runs.
    assert sorted(beat_and_count_runs()) == [
        ("runtime_heartbeat", 1),
        ("runtime_heartbeat_online", 2),
    ]


def run_sql(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.parametrize(
    "change",
    [
        "DEALLOCATE runtime_heartbeat",  # as a pooler resetting the session would
        "DEALLOCATE runtime_heartbeat; PREPARE runtime_heartbeat AS SELECT 1",  # another release's
    ],
    ids=["gone", "another"],
)
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_survives_its_prepared_statement_going_stale(make, change):
    runtime = make.runtime(status="offline", offline_at=Now())
    daemon = DaemonClient(runtime.workspace)
    body = {"runtime_id": str(runtime.id)}
    assert daemon.post("heartbeat", body).status_code == 200
    run_sql(change)
    if "PREPARE" in change:  # a session handed over by a pooler is a new driver connection
        queries.HEARTBEAT.prepared_on.discard(connection.connection)
    AgentRuntime.objects.filter(id=runtime.id).update(status="offline", offline_at=Now())

    response = daemon.post("heartbeat", body)

    assert (response.status_code, response.json()["status"]) == (200, "online")
    assert AgentRuntime.objects.get(id=runtime.id).status == "online"


def test_heartbeat_for_another_workspaces_runtime_looks_like_no_runtime(daemon, make):
    theirs = make.runtime(make.workspace("other"), seen_ago=60)
    before = snapshot()

    foreign = daemon.post("heartbeat", {"runtime_id": str(theirs.id)})
    unknown = daemon.post("heartbeat", {"runtime_id": str(uuid.uuid4())})

    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
    assert (foreign.status_code, foreign.json()) == (404, {"error": "runtime not found"})
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "runtime_id: required UUID string"),
        ({"runtime_id": 12}, "runtime_id: required UUID string"),
        ({"runtime_id": "12"}, "runtime_id: not a UUID"),
    ],
)
def test_heartbeat_refuses_a_bad_runtime_id(daemon, body, message):
    response = daemon.post("heartbeat", body)

    assert (response.status_code, response.json()) == (400, {"error": message})


# --- deregister ------------------------------------------------------------------------------


def test_deregister_sets_runtimes_offline_and_announces_the_online_ones(daemon, make, signal_log):
    online = make.runtime(daemon.workspace, provider="claude")
    already = make.runtime(daemon.workspace, provider="codex", status="offline")
    ids = [str(online.id), str(already.id)]

    response = daemon.post("deregister", {"runtime_ids": ids})

    assert response.json() == {"runtimes": [{"id": i, "status": "offline"} for i in ids]}
    online.refresh_from_db()
    assert (online.status, online.offline_at) == ("offline", db_now())
    assert signal_log.runtimes_changed == [
        ("deregister", RuntimeChange(id=online.id, workspace_id=daemon.workspace.id))
    ]


def test_deregister_with_one_unknown_id_changes_nothing(daemon, make, signal_log):
    mine = make.runtime(daemon.workspace)
    theirs = make.runtime(make.workspace("other"))
    before = snapshot()

    for stranger in (theirs.id, uuid.uuid4()):
        response = daemon.post("deregister", {"runtime_ids": [str(mine.id), str(stranger)]})
        assert (response.status_code, response.json()) == (
            404,
            {"error": f"runtime not found: {stranger}"},
        )

    assert snapshot() == before
    assert signal_log.runtimes_changed == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "runtime_ids: required non-empty array"),
        ({"runtime_ids": "abc"}, "runtime_ids: required non-empty array"),
        ({"runtime_ids": [1]}, "runtime_ids: required UUID string"),
        ({"runtime_ids": ["zz"]}, "runtime_ids: not a UUID"),
        ({"runtime_ids": [str(uuid.uuid4())] * 1001}, "runtime_ids: more than 1000 items"),
    ],
)
def test_deregister_refuses_a_bad_id_list(daemon, body, message):
    response = daemon.post("deregister", body)

    assert (response.status_code, response.json()) == (400, {"error": message})


# --- auth and method --------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "garbage", "unknown", "expired", "revoked", "basic"])
def test_a_request_without_a_live_token_is_unauthorized(daemon, make, case):
    runtime = make.runtime(daemon.workspace, seen_ago=60)
    token, raw = issue_token(workspace=daemon.workspace)
    if case == "expired":
        DaemonToken.objects.filter(id=token.id).update(expires_at=seconds_ago(1))
    if case == "revoked":
        DaemonToken.objects.filter(id=token.id).update(revoked_at=Now())
    headers = {
        "missing": {},
        "garbage": {"Authorization": "Bearer"},
        "unknown": {"Authorization": "Bearer mdt_" + "a" * 43},
        "expired": {"Authorization": f"Bearer {raw}"},
        "revoked": {"Authorization": f"Bearer {raw}"},
        "basic": {"Authorization": f"Basic {raw}"},
    }[case]
    before = snapshot()

    response = daemon.client.post(
        "/api/daemon/heartbeat",
        data={"runtime_id": str(runtime.id)},
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "missing, invalid, expired or revoked token"}
    assert snapshot() == before


@pytest.mark.parametrize(
    "body", [{"runtime_id": "nope"}, {"runtime_id": str(uuid.uuid4())}, {}, None]
)
def test_a_bad_token_is_told_so_before_anything_else_that_is_wrong(daemon, body):
    response = daemon.post("heartbeat", body, token="mdt_" + "a" * 43)

    assert response.status_code == 401


def test_a_token_from_another_workspace_cannot_touch_this_ones_runtimes(daemon, make):
    runtime = make.runtime(daemon.workspace, seen_ago=60)
    stranger = DaemonClient(make.workspace("other"))

    response = stranger.post("heartbeat", {"runtime_id": str(runtime.id)})

    assert response.status_code == 404


def test_using_a_token_touches_last_used_at_once_a_minute(daemon, make):
    runtime = make.runtime(daemon.workspace)
    token = DaemonToken.objects.get(workspace=daemon.workspace)
    assert token.last_used_at is None

    daemon.post("heartbeat", {"runtime_id": str(runtime.id)})
    token.refresh_from_db()
    assert token.last_used_at == db_now()

    DaemonToken.objects.filter(id=token.id).update(last_used_at=seconds_ago(30))
    daemon.post("heartbeat", {"runtime_id": str(runtime.id)})
    token.refresh_from_db()
    assert token.last_used_at < db_now()


def test_the_wrong_method_is_refused(daemon):
    response = daemon.get("heartbeat")

    assert (response.status_code, response.json()) == (
        405,
        {"error": "method not allowed: use POST"},
    )
