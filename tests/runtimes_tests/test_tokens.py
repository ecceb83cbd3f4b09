"""Daemon tokens: `create_daemon_token` prints one once; only its hash is stored."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from runtimes.models import DaemonToken
from runtimes.tokens import authenticate, hash_token, issue_token
from tests.helpers.daemon_client import DaemonClient
from tests.helpers.db import database_url, db_now


def create_token(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_daemon_token", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_the_command_prints_a_working_token_once_and_stores_only_its_hash(make):
    workspace = make.workspace()
    runtime = make.runtime(workspace, seen_ago=60)

    raw = create_token("--workspace", str(workspace.id), "--name", "ci")[-1]

    token = DaemonToken.objects.get(workspace=workspace)
    assert (token.name, token.token_hash, token.expires_at) == ("ci", hash_token(raw), None)
    assert raw not in str(list(DaemonToken.objects.values()))
    assert authenticate(raw) == workspace.id
    response = DaemonClient(workspace, token=raw).post("heartbeat", {"runtime_id": str(runtime.id)})
    assert response.status_code == 200


@pytest.mark.django_db
def test_an_expiring_token_expires_by_the_database_clock(make):
    workspace = make.workspace()

    raw = create_token("--workspace", str(workspace.id), "--expires-in-days", "2")[-1]

    token = DaemonToken.objects.get(workspace=workspace)
    # Django's Now() is the statement's time, a moment after the test transaction's now().
    assert timedelta(days=2) <= token.expires_at - db_now() < timedelta(days=2, seconds=5)
    DaemonToken.objects.filter(id=token.id).update(expires_at=db_now())
    assert authenticate(raw) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workspace", "nope"], "--workspace must be a UUID, got 'nope'"),
        (["--workspace", "00000000-0000-0000-0000-000000000001"], "no workspace "),
        (["--expires-in-days", "0"], "--expires-in-days must be greater than zero, got 0"),
        (["--expires-in-days", "x"], "--expires-in-days must be a whole number, got 'x'"),
    ],
)
def test_the_command_refuses_bad_arguments(make, args, message):
    workspace = make.workspace()
    if "--workspace" not in args:
        args = ["--workspace", str(workspace.id), *args]

    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        create_token(*args)

    assert not DaemonToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_line_shows_the_token_last_and_errors_on_one_line(make):
    workspace = make.workspace()
    env = {**os.environ, "DATABASE_URL": database_url()}
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "create_daemon_token"]

    ok = subprocess.run(
        [*command, "--workspace", str(workspace.id)], env=env, capture_output=True, text=True
    )
    bad = subprocess.run(
        [*command, "--workspace", str(uuid.uuid4())], env=env, capture_output=True, text=True
    )

    assert ok.returncode == 0, ok.stderr
    assert authenticate(ok.stdout.splitlines()[-1]) == workspace.id
    assert bad.returncode != 0
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("CommandError: no workspace ")


@pytest.mark.django_db
def test_a_huge_expiry_is_refused_before_anything_is_saved(make, admin_client):
    workspace = make.workspace()

    with pytest.raises(CommandError, match="--expires-in-days must be at most 3650, got 99999999"):
        create_token("--workspace", str(workspace.id), "--expires-in-days", "99999999")

    assert not DaemonToken.objects.exists()
    assert admin_client.get("/admin/runtimes/daemontoken/").status_code == 200


@pytest.mark.django_db
def test_the_longest_expiry_saves_and_lists(make, admin_client):
    workspace = make.workspace()
    create_token("--workspace", str(workspace.id), "--expires-in-days", "3650")
    assert DaemonToken.objects.get().expires_at - db_now() >= timedelta(days=3650)
    assert admin_client.get("/admin/runtimes/daemontoken/").status_code == 200


@pytest.mark.django_db
def test_the_admin_neither_unrevokes_a_token_nor_moves_it(make, admin_client):
    workspace, other = make.workspace("acme"), make.workspace("other")
    token, raw = issue_token(workspace=workspace, name="laptop")
    DaemonToken.objects.filter(pk=token.pk).update(revoked_at=db_now())
    url = f"/admin/runtimes/daemontoken/{token.pk}/change/"

    response = admin_client.post(
        url, {"name": "renamed", "workspace": str(other.pk), "revoked_at_0": "", "expires_at_0": ""}
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.workspace_id) == ("renamed", workspace.id)
    assert token.revoked_at is not None
    assert authenticate(raw) is None


@pytest.mark.django_db
def test_issuing_refuses_an_expiry_past_the_bound(make):
    with pytest.raises(ValueError, match="within 3650 days"):
        issue_token(workspace=make.workspace(), expires_in=timedelta(days=3651))
    assert not DaemonToken.objects.exists()
