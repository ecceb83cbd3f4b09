"""What a careless deployment could run with: a published or short SECRET_KEY, no TLS
settings, weak passwords. Each is refused at start-up or checked by Django's deploy check."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tools.servers import BASE_DIR


def manage(*args: str, drop=(), **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("change-me", "SECRET_KEY is a published placeholder: generate one"),
        ("insecure-local-development-key", "SECRET_KEY is a published placeholder: generate one"),
        ("django-insecure-" + "k" * 50, "SECRET_KEY is a published placeholder: generate one"),
        ("x" * 49 + "yz", "SECRET_KEY must be at least 50 characters of at least 5 different"),
        ("short-but-random-9f3b", "SECRET_KEY must be at least 50 characters"),
    ],
    ids=["env-example", "debug-default", "django-template", "few-characters", "short"],
)
def test_production_refuses_a_published_or_short_secret_key(key, message):
    run = manage("check", DEBUG="0", SECRET_KEY=key)

    assert run.returncode != 0
    assert run.stderr.startswith(f"configuration error: {message}"), run.stderr


def readme_production_environment() -> dict[str, str]:
    """The variables README's Security section says a deployment sets, a real key in place of
    its placeholder."""
    section = (BASE_DIR / "README.md").read_text().partition("## Security")[2]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Security section shows no production environment"
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("#")[0].strip().partition("=")
        if name:
            env[name] = value
    assert env.get("SECRET_KEY"), "README's production environment sets no SECRET_KEY"
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def test_the_deploy_check_passes_with_readmes_production_environment():
    env = readme_production_environment()
    drop = ["HTTPS", *(name for name in os.environ if name.startswith("SECURE_"))]

    run = manage("check", "--deploy", "--fail-level", "WARNING", drop=drop, **env)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNINGS" not in run.stderr + run.stdout


def test_tls_settings_default_on_with_debug_off_and_each_has_a_switch():
    show = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_PROXY_SSL_HEADER[0])"
    )
    key = secrets.token_urlsafe(50)
    on = manage("shell", "-v", "0", "-c", show, drop=["HTTPS"], DEBUG="0", SECRET_KEY=key)
    off = manage("shell", "-v", "0", "-c", show, DEBUG="0", SECRET_KEY=key, HTTPS="0")

    assert on.stdout.split() == ["True", "True", "True", "31536000", "HTTP_X_FORWARDED_PROTO"]
    assert off.stdout.split() == ["False", "False", "False", "0", "HTTP_X_FORWARDED_PROTO"]


@pytest.mark.parametrize("password", ["12345678", "password", "admin123"])
def test_weak_admin_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_long_random_password_is_accepted():
    validate_password(secrets.token_urlsafe(16))
    assert settings.AUTH_PASSWORD_VALIDATORS
