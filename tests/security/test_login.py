"""The admin login under attack: repeated failures lock a username, and a client address, out
before any further password is hashed; through the proxy, the address is the one the proxy
saw, whatever the client claims."""

import re
import secrets
import time
from http.cookies import SimpleCookie

import pytest
from django.urls import reverse

from tests.helpers.proxy import front_door, request
from tools.servers import nginx_binary

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 10  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def admin(django_user_model):
    password = secrets.token_urlsafe(16)
    django_user_model.objects.create_superuser("admin", password=password)
    return "admin", password


def attempt(client, username: str, password: str, address: str) -> int:
    form = {"username": username, "password": password}
    return client.post(reverse("admin:login"), form, REMOTE_ADDR=address).status_code


def test_a_username_is_locked_out_after_its_failure_limit_from_any_address(client, admin):
    username, password = admin
    failed = [attempt(client, username, "guess", f"10.0.0.{i}") for i in range(LIMIT)]

    # The right password, from an address never seen: still refused, until the cool-off.
    assert failed[:-1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert attempt(client, username, password, "10.0.1.1") == 429
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_out_across_usernames(client, admin):
    username, password = admin
    for i in range(LIMIT):
        attempt(client, f"user{i}", "guess", "10.0.0.1")

    assert attempt(client, username, password, "10.0.0.1") == 429
    assert attempt(client, username, password, "10.0.0.2") == 302


def test_a_success_before_the_limit_clears_the_failures(client, admin):
    username, password = admin
    for _ in range(LIMIT - 1):
        attempt(client, username, "guess", "10.0.0.1")
    assert attempt(client, username, password, "10.0.0.1") == 302
    client.logout()

    assert attempt(client, username, "guess", "10.0.0.1") == 200
    assert attempt(client, username, password, "10.0.0.1") == 302


def login_form(port: int) -> tuple[str, str]:
    """The CSRF cookie and form token of the admin's login page, through `port`."""
    status, headers, body = request(port, "GET", reverse("admin:login"))
    assert status == 200
    cookie = SimpleCookie(headers["Set-Cookie"])["csrftoken"].value
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    return cookie, token


@pytest.mark.skipif(not nginx_binary(), reason="nginx is not installed (.ci/run installs it)")
def test_through_the_proxy_a_client_cannot_claim_another_address(admin):
    username, password = admin
    with front_door(LOGIN_FAILURE_LIMIT="2") as door:
        cookie, token = login_form(door.proxy)

        def post(user: str, secret: str, claimed: str) -> tuple[int, bytes]:
            form = f"csrfmiddlewaretoken={token}&username={user}&password={secret}".encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "Cookie": f"csrftoken={cookie}",
                       "X-Real-IP": claimed, "X-Forwarded-For": claimed}  # fmt: skip
            # Within the proxy's rate for all logins together (one a second), so that only
            # the app's lockout can refuse.
            time.sleep(1.1)
            status, _, body = request(door.proxy, "POST", reverse("admin:login"), form, headers)
            return status, body

        failed = [post(f"user{i}", "guess", f"203.0.113.{i}")[0] for i in range(2)]
        status, body = post(username, password, "203.0.113.99")

    # Two failures from what the proxy saw as one address (the second answered as locked),
    # and the right password from it refused by the app's lockout, not by the proxy's rate.
    assert failed == [200, 429]
    assert status == 429
    assert b"Account locked" in body
