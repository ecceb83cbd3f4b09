"""gunicorn's settings for the web process, read with `gunicorn -c python:multica.gunicorn_conf`.

Threads rather than more processes: a request spends much of its time waiting on PostgreSQL,
and each thread keeps one database connection, so the connection count stays bounded at
workers x threads. WEB_CONCURRENCY (processes) and WEB_THREADS tune it."""

import os


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdecimal() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


wsgi_app = "multica.wsgi:application"
bind = ["0.0.0.0:8000"]
worker_class = "gthread"
workers = _positive_int("WEB_CONCURRENCY", len(os.sched_getaffinity(0)))
threads = _positive_int("WEB_THREADS", 8)
# Longer than the proxy's idle upstream timeout, so the proxy, not gunicorn, closes an idle
# connection: a request is never sent down a connection gunicorn is closing.
keepalive = 75
accesslog = None
errorlog = "-"
