"""gunicorn's settings for the web process, read with `gunicorn -c python:multica.gunicorn_conf`.

Threads rather than more processes: a request spends much of its time waiting on PostgreSQL,
and each thread keeps one database connection, so a web process holds at most
WEB_WORKERS x WEB_THREADS connections (16 by default), which must fit, over every replica and
beside the other processes, in PostgreSQL's max_connections."""

import os


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdecimal() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


# A fixed thread pool, unlike daphne's thread per request: a connection kept by a thread is
# reused by every request it serves, instead of forking a PostgreSQL backend for each.
os.environ.setdefault("CONN_MAX_AGE", "60")

wsgi_app = "multica.wsgi:application"
bind = ["0.0.0.0:8000"]
worker_class = "gthread"
workers = _positive_int("WEB_WORKERS", 2)
threads = _positive_int("WEB_THREADS", 8)
# Longer than the proxy's idle upstream timeout, so the proxy, not gunicorn, closes an idle
# connection: a request is never sent down a connection gunicorn is closing.
keepalive = 75
