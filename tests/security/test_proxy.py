"""What the proxy (docker-compose.yml's nginx config, run in a real nginx) does to a hostile
client before the app sees it: no version shown, the scheme and client address forwarded,
login attempts and daemon API floods held to their rates."""

import json
import time
from collections import Counter

import pytest

from tests.helpers.proxy import at_once, front_door, request
from tools.servers import nginx_binary

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not nginx_binary(), reason="nginx is not installed (.ci/run installs it)"),
]


def test_the_proxy_shows_no_version():
    with front_door() as door:
        status, headers, _ = request(door.proxy, "GET", "/api/schema/")
        too_big = request(door.proxy, "POST", "/api/daemon/heartbeat", b"x" * (2 * 1024 * 1024))

    assert status == 200
    assert headers["Server"] == "nginx"
    assert too_big[0] == 413
    assert b"nginx/" not in too_big[2]


def test_the_scheme_a_tls_terminator_reports_reaches_the_app():
    with front_door(HTTPS="1") as door:
        plain = request(door.proxy, "GET", "/admin/login/")
        secure = request(door.proxy, "GET", "/admin/login/", headers={"X-Forwarded-Proto": "https"})

    # Over plain HTTP the app sends the browser to HTTPS; behind TLS it serves, with HSTS.
    assert plain[0] == 301
    assert plain[1]["Location"].startswith("https://")
    assert secure[0] == 200
    assert "max-age=31536000" in secure[1]["Strict-Transport-Security"]


def test_with_https_on_the_probes_still_answer_plain_http_from_inside():
    with front_door(HTTPS="1") as door:
        probes = [request(door.web, "GET", path)[0] for path in ("/healthz", "/readyz")]
        page = request(door.web, "GET", "/admin/login/")[0]

    assert probes == [200, 200]  # compose's health check of the web process
    assert page == 301


def test_a_flood_of_bad_tokens_from_one_address_is_held_to_its_rate():
    body = json.dumps({"runtime_id": "00000000-0000-0000-0000-000000000000"}).encode()
    headers = {"Authorization": "Bearer not-a-token", "Content-Type": "application/json"}

    def flood(port: int) -> list[int]:
        return [request(port, "POST", "/api/daemon/heartbeat", body, headers)[0] for _ in range(75)]

    with front_door() as door:
        started = time.monotonic()
        statuses = Counter(s for batch in at_once(16, flood, door.proxy) for s in batch)
        seconds = time.monotonic() - started

    # The burst (400) and the rate (200 a second) reach the app at most; the proxy refuses
    # the rest.
    assert statuses[401] + statuses[429] == 1200, statuses
    assert statuses[401] <= 400 + 200 * seconds + 1, (statuses, seconds)
    assert statuses[429] >= 1


def test_login_attempts_are_held_to_a_few_per_address():
    form = b"username=admin&password=guess"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with front_door() as door:
        answers = at_once(64, request, door.proxy, "POST", "/admin/login/", form, headers)
        statuses = Counter(status for status, _, _ in answers)
        page = request(door.proxy, "GET", "/admin/login/")[0]

    # The burst of all addresses together (2) and one more reach the app (refused there for
    # the missing CSRF token); the proxy refuses the rest.
    assert statuses[429] >= 61, statuses
    assert statuses[403] <= 3
    assert page == 200  # the login page itself is not limited
