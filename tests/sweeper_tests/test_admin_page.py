"""The sweeper's admin page: the last sweeps and the switch, the brake, the hearing and what the
sweeps changed, read from the sweeper's own tables."""

from datetime import timedelta

import pytest
from django.urls import reverse

from common.sql import execute
from sweeper.config import Rules
from sweeper.sweeps import sweep_stale_runtimes, sweep_stale_tasks

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:sweeper_sweeperstate_changelist")


def page(admin_client) -> str:
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    return response.content.decode()


def test_before_any_sweep_the_page_says_the_switch_has_tripped(admin_client):
    html = page(admin_client)
    assert "Sweeps — FAILING" in html
    assert "the runtimes sweep has never succeeded" in html


def test_after_sweeps_the_page_shows_them_and_what_they_changed(admin_client, make):
    make.task(make.agent(make.runtime(seen_ago=600), status="working"), status="running")
    rules = Rules(reconnect_grace=timedelta(0), max_attempts=1)
    sweep_stale_runtimes(rules=rules)
    sweep_stale_tasks(rules=rules)
    html = page(admin_client)
    assert "Sweeps — healthy" in html
    assert "runtime_offline 1" in html
    assert "<th>runtimes marked offline</th><td>1</td>" in html
    assert "released" in html
    assert "hears" in html


def test_the_page_shows_an_engaged_brake_and_blindness(admin_client):
    execute(
        "INSERT INTO sweeper_state (id, brake_engaged_at, brake_online, brake_stale, silent_after)"
        " VALUES (1, now(), 40, 30, now())"
    )
    html = page(admin_client)
    assert "ENGAGED since" in html
    assert "(30 of 40 online runtimes stale)" in html
    assert "BLIND: runtimes are not judged" in html
