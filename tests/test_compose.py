"""docker-compose.yml and the Dockerfile, read with a real YAML parser (there is no Docker engine
to start them): the services, their commands (the ones README documents), dependencies, health
checks, and every setting from the environment."""

import re
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "beat")
COMMANDS = {
    "migrate": "python manage.py migrate --noinput",
    "web": "daphne -b 0.0.0.0 -p 8000 multica.asgi:application",
    "worker": "celery -A multica worker --loglevel=INFO",
    "beat": "celery -A multica beat --loglevel=INFO",
}
READY = {
    "db": "service_healthy",
    "redis": "service_healthy",
    "migrate": "service_completed_successfully",
}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]


def test_the_stack_has_exactly_the_production_services(services):
    assert set(services) == {"db", "redis", *APP_SERVICES}


def test_app_services_share_one_image_built_from_the_dockerfile(services):
    assert {(services[name]["build"], services[name]["image"]) for name in APP_SERVICES} == {
        (".", "multica-sweeper:latest")
    }
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.MULTILINE)
    assert "pip install -r requirements.txt" in dockerfile


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_runs_its_documented_command(services, name):
    assert services[name]["command"] == COMMANDS[name]
    readme = (BASE_DIR / "README.md").read_text()
    assert COMMANDS[name] in readme, f"README does not document {COMMANDS[name]!r}"


def test_there_is_exactly_one_beat(services):
    beats = [s for s in services.values() if " beat" in str(s.get("command", ""))]
    assert len(beats) == 1
    assert beats[0].get("deploy", {}).get("replicas", 1) == 1


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_processes_start_once_db_and_redis_are_healthy_and_migrations_ran(services, name):
    depends_on = services[name]["depends_on"]
    assert {dep: depends_on[dep]["condition"] for dep in depends_on} == READY


def test_migrations_wait_for_a_healthy_database_and_run_once(services):
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"


@pytest.mark.parametrize(("name", "probe"), [("db", "pg_isready"), ("redis", "redis-cli")])
def test_db_and_redis_have_health_checks(services, name, probe):
    assert probe in " ".join(services[name]["healthcheck"]["test"])


def settings_read_from_environment() -> set[str]:
    source = (BASE_DIR / "multica" / "settings.py").read_text()
    return set(re.findall(r'(?:env\.\w+|positive_seconds)\("([A-Z_]+)"', source))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_setting_comes_from_the_environment(services, name):
    environment = services[name]["environment"]
    assert settings_read_from_environment() <= set(environment)
    # Nothing is fixed in the file: each value is the variable, perhaps with a default.
    for variable, value in environment.items():
        assert "${" in value, f"{variable} is hard-coded"
    assert ":?" in environment["SECRET_KEY"], "no default secret key in production"
