"""One token registering runtimes without end: a workspace holds at most
WORKSPACE_MAX_RUNTIMES, past which a register is refused (409) and changes nothing, also when
two registers race for the last slot."""

import pytest

from common.errors import Conflict
from runtimes import daemons
from runtimes.daemons import RuntimeSpec
from runtimes.models import AgentRuntime
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.threads import held_open, in_thread, wait_for_lock_wait
from tests.security.test_settings import manage


@pytest.mark.django_db
def test_a_register_past_the_workspaces_quota_is_refused_and_changes_nothing(make, settings):
    settings.WORKSPACE_MAX_RUNTIMES = 3
    daemon = DaemonClient(make.workspace())
    daemon.register("claude", "codex", daemon_id="a")

    refused = daemon.post("register", daemon.register_body("claude", "codex", daemon_id="b"))

    assert refused.status_code == 409
    assert refused.json() == {
        "error": "the workspace has 2 runtimes and may have 3: registering 2 more would pass"
        " its limit"
    }
    assert AgentRuntime.objects.count() == 2


@pytest.mark.django_db
def test_at_the_quota_a_daemon_still_registers_its_runtimes_again(make, settings):
    settings.WORKSPACE_MAX_RUNTIMES = 2
    daemon = DaemonClient(make.workspace())
    first = daemon.register("claude", "codex", daemon_id="a")

    again = daemon.register("codex", "claude", daemon_id="a")

    assert {r["id"] for r in again} == {r["id"] for r in first}
    assert daemon.post("register", daemon.register_body("gemini", daemon_id="a")).status_code == 409


def register(workspace, daemon_id: str):
    spec = RuntimeSpec(name=f"{daemon_id} claude", provider="claude", version="1")
    return daemons.register(
        workspace_id=workspace.id, daemon_id=daemon_id, device_name="", runtimes=[spec],
        max_runtimes=1,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_two_registers_racing_for_the_last_slot_cannot_both_take_it(make):
    workspace = make.workspace()
    with held_open(register, workspace, "first") as first:
        second, outcome = in_thread(register, workspace, "second")
        wait_for_lock_wait()  # the second waits for the first to commit...
    second.join(10)

    # ...and then counts the runtime the first committed.
    assert [r.name for r in first[0]] == ["first claude"]
    assert isinstance(outcome[0], Conflict)
    assert list(AgentRuntime.objects.values_list("name", flat=True)) == ["first claude"]


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_quota_stops_start_up_naming_it(value):
    run = manage("check", WORKSPACE_MAX_RUNTIMES=value)

    assert run.returncode != 0
    assert "WORKSPACE_MAX_RUNTIMES" in run.stderr
