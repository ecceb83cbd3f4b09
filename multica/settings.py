"""Settings for the multica sweeper, read from the environment (see README, `.env.example`)."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def positive_seconds(name: str, default: int) -> int:
    """A duration in whole seconds from the environment; start-up stops on anything else."""
    return whole_number(name, default, minimum=1, unit="seconds")


def whole_number(name: str, default: int, *, minimum: int, unit: str = "") -> int:
    """A whole number of at least `minimum` from the environment; start-up stops, naming the
    variable, on anything else."""
    raw = env.str(name, default=str(default)).strip()
    what = f"a whole number of {unit}" if unit else "a whole number"
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}, got {raw!r}") from None
    if value < minimum:
        bound = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ImproperlyConfigured(f"{name} must be {bound}, got {value}")
    return value


def fraction(name: str, default: float) -> float:
    """A number above 0 and at most 1 from the environment."""
    raw = env.str(name, default=str(default)).strip()
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value <= 1:
        raise ImproperlyConfigured(f"{name} must be above 0 and at most 1, got {raw}")
    return value


# Keys published with the code (.env.example, the debug default, Django's own templates): a
# deployment that kept one signs its sessions with a key anyone can read.
KNOWN_PLACEHOLDER_KEYS = {"change-me", "changeme", "secret", "insecure-local-development-key"}
MIN_SECRET_KEY_LENGTH = 50  # Django's own deployment check (security.W009) asks for as much


def production_secret_key(raw: str | None) -> str:
    """SECRET_KEY as DEBUG off needs it: set, no published placeholder, at least 50 characters
    of at least 5 different ones (what `check --deploy` asks)."""
    if not raw:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    if raw.lower() in KNOWN_PLACEHOLDER_KEYS or raw.startswith("django-insecure-"):
        raise ImproperlyConfigured("SECRET_KEY is a published placeholder: generate one")
    if len(raw) < MIN_SECRET_KEY_LENGTH or len(set(raw)) < 5:
        raise ImproperlyConfigured(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters of at least 5"
            f" different ones when DEBUG is off, got {len(raw)}"
        )
    return raw


# --- Core -------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-development-key")
else:
    SECRET_KEY = production_secret_key(env.str("SECRET_KEY", default=""))
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- TLS: on unless DEBUG; a plain-HTTP deployment turns it off with HTTPS=0 --------------
# TLS ends at the proxy, which says so in X-Forwarded-Proto (set by nginx itself: the web
# process is reachable only through it, so no client can claim https on its own).
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = whole_number(
    "SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0, unit="seconds"
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Probes and scrapes come over plain HTTP from inside the deployment (compose's health checks,
# Prometheus), not through the TLS terminator.
SECURE_REDIRECT_EXEMPT = [r"^api/schema/$", r"^healthz$", r"^readyz$", r"^health/", r"^metrics$"]
# Joining the browsers' preload list is a commitment for the whole domain, so it is opted
# into (SECURE_HSTS_PRELOAD=1), and its reminder is not a warning.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Login lockout (see "Auth" below).
    "axes",
    "outbox",
    "runtimes",
    "tasks",
    "sweeper",
    "realtime",
    "board",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's CSS and JS, served by the app itself: no separate static server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "multica.urls"
# Members log in on the board's own page; the admin's is for staff only.
LOGIN_URL = "board:login"
LOGIN_REDIRECT_URL = "board:home"
LOGOUT_REDIRECT_URL = "board:login"
WSGI_APPLICATION = "multica.wsgi.application"
ASGI_APPLICATION = "multica.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin's look for the whole site (multica/templates/admin/base_site.html).
        "DIRS": [BASE_DIR / "multica" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# Liveness is judged by PostgreSQL's clock, so PostgreSQL is the only supported engine.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/multica")
}
# 0: under ASGI every request runs on a thread of its own, so a kept connection is a leaked one
# (hundreds of idle sessions, then "too many clients"). The web process (multica.web) raises it
# for its pool of long-lived threads.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        # The scheme only: the rest may hold a password.
        "DATABASE_URL must be a PostgreSQL URL (postgres://...),"
        f" not {urlsplit(env.str('DATABASE_URL')).scheme}://..."
    )
# Django's PostgreSQL backend with a health check, before each request's first query, that
# sends no query of its own.
DATABASES["default"]["ENGINE"] = "multica.db"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and the Channels layer ----------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's default 5 s socket timeout kills every idle WebSocket with 1011.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            # A batch of 500 events is one message (realtime.receivers); room for a mass outage's
            # worth of batches while a consumer writes the previous ones to its socket.
            "capacity": 1000,
            # A member drops out of a group this long after joining it; each socket renews its
            # membership well before (realtime.consumers), so only a dead one drops out.
            "group_expiry": positive_seconds("CHANNEL_GROUP_EXPIRY_SECONDS", 86400),
        },
    },
}
# Sockets one user may hold open at once, over all workspaces and server processes; past it a
# socket is closed with 4429. Every event goes out once per open socket.
WEBSOCKETS_PER_USER_MAX = whole_number("WEBSOCKETS_PER_USER_MAX", 20, minimum=1)

# --- Celery (the beat schedule is code: multica/celery_app.py) ---------------
CELERY_TIMEZONE = "UTC"
CELERY_TASK_IGNORE_RESULT = True
# Defaults for any task; the sweeps set their own, tighter limits.
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
# Sweeps are few and short: a busy worker process holds no tick back from an idle one.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker waits out a broker outage and resumes by itself, however long it lasts...
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# ...while beat gives a tick up within seconds (logging it), and sends the next one normally.
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 4, "socket_timeout": 10}
# The worker's and beat's logs go through LOGGING below, like everything else.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Events (the outbox) -------------------------------------------------------
# Published events are kept this long for replay (`?after=`); older ones are pruned.
EVENT_RETENTION_SECONDS = positive_seconds("EVENT_RETENTION_SECONDS", 86400)
# How often beat runs the relay's catch-up (what the publish right after commit missed).
EVENT_RELAY_INTERVAL_SECONDS = positive_seconds("EVENT_RELAY_INTERVAL_SECONDS", 2)

# --- Sweeper ------------------------------------------------------------------
SWEEP_INTERVAL_SECONDS = positive_seconds("SWEEP_INTERVAL_SECONDS", 30)
RUNTIME_STALE_SECONDS = positive_seconds("RUNTIME_STALE_SECONDS", 45)
TASK_DISPATCH_TIMEOUT_SECONDS = positive_seconds("TASK_DISPATCH_TIMEOUT_SECONDS", 300)
TASK_RUNNING_TIMEOUT_SECONDS = positive_seconds("TASK_RUNNING_TIMEOUT_SECONDS", 9000)
# Task leases: a running task its daemon's heartbeats list is stopped only after this long...
TASK_MAX_RUNNING_SECONDS = positive_seconds("TASK_MAX_RUNNING_SECONDS", 86400)
# ...and a live task they stopped listing fails (`orphaned`) once missing this long.
TASK_ORPHAN_GRACE_SECONDS = positive_seconds("TASK_ORPHAN_GRACE_SECONDS", 30)
# A task the sweeper fails is queued again while its attempt is below this (1: never).
TASK_MAX_ATTEMPTS = whole_number("TASK_MAX_ATTEMPTS", 2, minimum=1)
# A task queued this long, never claimed, fails (`queued_expired`).
TASK_QUEUED_TTL_SECONDS = positive_seconds("TASK_QUEUED_TTL_SECONDS", 7200)
# A runtime offline this long, with no agent bound and no live task, is deleted.
RUNTIME_GC_AFTER_SECONDS = positive_seconds("RUNTIME_GC_AFTER_SECONDS", 7 * 86400)
# The daemons' heartbeat period. A whole period without any heartbeat from a fleet of at least
# SWEEP_BRAKE_MIN_RUNTIMES means the platform could not hear (web, proxy or database down).
RUNTIME_HEARTBEAT_SECONDS = positive_seconds("RUNTIME_HEARTBEAT_SECONDS", 15)
# How long a runtime may be offline before its dispatched and running tasks fail (0: at once).
RUNTIME_RECONNECT_GRACE_SECONDS = whole_number(
    "RUNTIME_RECONNECT_GRACE_SECONDS", 300, minimum=0, unit="seconds"
)
# A sweep that would take more than this share of the online runtimes offline engages the
# brake, which holds their tasks until they come back or an operator releases it.
SWEEP_BRAKE_FRACTION = fraction("SWEEP_BRAKE_FRACTION", 0.5)
# Below this many online runtimes neither fleet silence nor the brake applies.
SWEEP_BRAKE_MIN_RUNTIMES = whole_number("SWEEP_BRAKE_MIN_RUNTIMES", 20, minimum=1)
# A live runtime's last beat is at most a period old when an outage starts: the guard against
# fleet silence must see a whole silent period before any live runtime can turn stale.
if RUNTIME_STALE_SECONDS < 2 * RUNTIME_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"RUNTIME_STALE_SECONDS ({RUNTIME_STALE_SECONDS}) must be at least twice"
        f" RUNTIME_HEARTBEAT_SECONDS ({RUNTIME_HEARTBEAT_SECONDS}); three times is the convention"
    )
# A gap between sweeps longer than the stale threshold counts as blindness, so a sweep every
# stale threshold or less often would never judge anything.
if SWEEP_INTERVAL_SECONDS >= RUNTIME_STALE_SECONDS:
    raise ImproperlyConfigured(
        f"SWEEP_INTERVAL_SECONDS ({SWEEP_INTERVAL_SECONDS}) must be less than"
        f" RUNTIME_STALE_SECONDS ({RUNTIME_STALE_SECONDS})"
    )

# --- Daemon API ----------------------------------------------------------------
# A workspace's runtimes, online or not (offline ones until RUNTIME_GC_AFTER_SECONDS deletes
# them): a register past it is refused with 409, so one token cannot fill the table.
WORKSPACE_MAX_RUNTIMES = whole_number("WORKSPACE_MAX_RUNTIMES", 1000, minimum=1)

# --- Metrics (GET /metrics) ------------------------------------------------------
# When set, a scrape must send `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Heartbeats counted by result (multica_heartbeats_total); off only to measure what counting
# costs (bench.heartbeats).
METRICS_HEARTBEATS = env.bool("METRICS_HEARTBEATS", default=True)

# --- Auth, i18n, static -------------------------------------------------------
# Django's four validators: `12345678` (common, numeric) is refused; they apply wherever a
# password is set through a form or `createsuperuser`, not to `set_password` in code.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# Login lockout (django-axes): LOGIN_FAILURE_LIMIT failed logins for one username, or from
# one client address, lock it out for LOGIN_COOLOFF_SECONDS, before any password is hashed
# (each hash costs ~0.2 s of a web thread). The proxy limits the rate of attempts besides.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = whole_number("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=positive_seconds("LOGIN_COOLOFF_SECONDS", 900))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "common.clients.client_address"
AXES_RESET_ON_SUCCESS = True
# No row per successful login: the table holds recent failures only, not a history.
AXES_DISABLE_ACCESS_LOG = True
# Its start-up banner would be a second line on every management command's stderr.
AXES_VERBOSE = False
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Timestamps to the second, with the time zone (multica/formats/).
FORMAT_MODULE_PATH = ["multica.formats"]
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Logging: everything to stderr, so `manage.py sweep --json` owns stdout ----
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "common.logfmt.KeyValueFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "filters": {"sampled_refusals": {"()": "common.logfmt.SampledRefusals"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    # Django's line per refused request: 401s sampled, so a bad-token flood is a line a second.
    "loggers": {"django.request": {"filters": ["sampled_refusals"]}},
}
