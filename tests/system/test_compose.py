"""docker-compose.yml and the Dockerfile, read with a real YAML parser and validated against the
Compose specification's JSON schema (there is no Docker engine to start them): the services,
their commands (the ones README documents), dependencies, health checks, every setting from the
environment, and the proxy's routes."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from multica import web
from multica.processes import PRODUCTION

BASE_DIR = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "ws", "worker", "beat")
COMMANDS = PRODUCTION
READY = {
    "db": "service_healthy",
    "redis": "service_healthy",
    "migrate": "service_completed_successfully",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_the_file_follows_the_compose_specification():
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(BASE_DIR / "docker-compose.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_stack_has_exactly_the_production_services(services):
    assert set(services) == {"db", "redis", "proxy", *APP_SERVICES}


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


@pytest.mark.parametrize("name", ["web", "ws", "worker", "beat"])
def test_processes_start_once_db_and_redis_are_healthy_and_migrations_ran(services, name):
    depends_on = services[name]["depends_on"]
    assert {dep: depends_on[dep]["condition"] for dep in depends_on} == READY


def test_migrations_wait_for_a_healthy_database_and_run_once(services):
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"


@pytest.mark.parametrize(("name", "probe"), [("db", "pg_isready"), ("redis", "redis-cli")])
def test_db_and_redis_have_health_checks(services, name, probe):
    assert probe in " ".join(services[name]["healthcheck"]["test"])


def test_the_worker_is_healthy_while_it_answers_a_ping(services):
    probe = " ".join(services["worker"]["healthcheck"]["test"])
    assert "celery -A multica inspect ping --destination celery@$$HOSTNAME" in probe


def test_beat_is_healthy_while_the_sweeps_it_sends_succeed(services):
    check = services["beat"]["healthcheck"]
    assert check["test"] == ["CMD", "python", "/app/manage.py", "sweeper_health"]
    assert "sweeper_health" in get_commands()
    # The first sweeps get the switch's three intervals (default 30 s) before it counts.
    assert parse_seconds(check["start_period"]) >= 3 * 30


def parse_seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def settings_read_from_environment() -> set[str]:
    source = (BASE_DIR / "multica" / "settings.py").read_text()
    return set(
        re.findall(r'(?:env\.\w+|positive_seconds|whole_number|fraction)\(\s*"([A-Z_]+)"', source)
    )


# Each process's own default: kept connections for the web process's threads (it sets
# it), none under daphne's thread per request. One value for all would break one of them.
PER_PROCESS = {"CONN_MAX_AGE"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_setting_comes_from_the_environment(services, name):
    environment = services[name]["environment"]
    assert settings_read_from_environment() - PER_PROCESS <= set(environment)
    assert not PER_PROCESS & set(environment)
    # Nothing is fixed in the file: each value is the variable, perhaps with a default.
    for variable, value in environment.items():
        assert "${" in value, f"{variable} is hard-coded"
    assert ":?" in environment["SECRET_KEY"], "no default secret key in production"


def nginx_config(compose) -> str:
    content = compose["configs"]["nginx"]["content"]
    # Compose substitutes `$name` itself, which would blank nginx's variables out.
    assert not re.search(r"(?<!\$)\$(?!\$)", content.replace("$$", "")), "an unescaped $"
    return content.replace("$$", "$")


def location(config: str, prefix: str) -> str:
    match = re.search(r"location " + re.escape(prefix) + r" \{(.*?)\}", config, re.S)
    assert match, f"no location {prefix}"
    return match.group(1)


def test_the_proxy_is_the_one_published_port_and_waits_for_both_servers(services):
    proxy = services["proxy"]
    assert proxy["ports"] == ["${PORT:-8000}:80"]
    assert [s for s in services if services[s].get("ports")] == ["proxy"]
    # Healthy before it starts, and restarted with them (it resolves their addresses once).
    assert proxy["depends_on"] == {
        name: {"condition": "service_healthy", "restart": True} for name in ("web", "ws")
    }
    assert "8000/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "8001" in " ".join(services["ws"]["healthcheck"]["test"])
    assert proxy["configs"] == [{"source": "nginx", "target": "/etc/nginx/nginx.conf"}]


def test_the_proxy_sends_websockets_to_daphne_and_the_rest_to_the_web_process(compose):
    config = nginx_config(compose)
    upstreams = dict(re.findall(r"upstream (\w+) \{\s*server ([\w:]+);", config))
    assert upstreams == {"web": "web:8000", "ws": "ws:8001"}
    # On loopback by default, on the container's network in compose (reached by the proxy).
    assert (web.arguments([]).host, web.arguments([]).port) == ("127.0.0.1", 8000)
    served = web.arguments(shlex.split(COMMANDS["web"])[3:])
    assert (served.host, served.port) == ("0.0.0.0", 8000)
    assert "-p 8001" in COMMANDS["ws"]
    routing = (BASE_DIR / "realtime" / "routing.py").read_text()
    assert re.search(r'path\(\s*"ws/', routing), "WebSockets no longer live under /ws/"

    websocket = location(config, "/ws/")
    assert "proxy_pass http://ws;" in websocket
    assert "proxy_set_header Upgrade $http_upgrade;" in websocket
    assert 'proxy_set_header Connection "upgrade";' in websocket
    http = location(config, "/")
    assert "proxy_pass http://web;" in http
    # Reused upstream connections need HTTP/1.1 without "Connection: close".
    assert "proxy_http_version 1.1;" in http
    assert 'proxy_set_header Connection "";' in http
    # The app checks the host and CSRF origin against what the browser sent, port and all.
    assert "proxy_set_header Host $http_host;" in http
    assert "$http_host" in websocket


def test_the_proxy_drops_an_idle_upstream_connection_before_the_app_would(compose):
    # Otherwise a request sent down a connection the app is closing fails, and nginx does not
    # retry a POST: a heartbeat lost as a 502.
    upstream = re.search(r"upstream web \{(.*?)\}", nginx_config(compose), re.S).group(1)
    idle_seconds = int(re.search(r"keepalive_timeout (\d+)s;", upstream).group(1))
    assert idle_seconds < web.IDLE_CONNECTION_MS / 1000


def test_the_proxy_can_hold_a_connection_open_for_each_of_10000_daemons(compose, services):
    # Daemons keep their connection between heartbeats. One worker may end up with all of them,
    # each with its upstream side too, and every connection is a file descriptor.
    config = nginx_config(compose)
    worker_connections = int(re.search(r"worker_connections (\d+);", config).group(1))
    rlimit = int(re.search(r"worker_rlimit_nofile (\d+);", config).group(1))
    assert worker_connections >= 2 * 10_000
    assert rlimit >= worker_connections
    assert services["proxy"]["ulimits"]["nofile"] >= rlimit
