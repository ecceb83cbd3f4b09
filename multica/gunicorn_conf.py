"""gunicorn's settings for the web process, read with `gunicorn -c python:multica.gunicorn_conf`.

A process per core, each with a pool of threads: a thread runs while others wait on
PostgreSQL, and a keep-alive connection stays with the process that accepted it, so a process
needs threads enough for its share of them. (bench/heartbeats.py on 2 cores found 4 x 2, 3 x 2,
4 x 1 and 6 x 1 within the run-to-run noise of 2 x 8.) Each thread keeps one database
connection, so a web process holds at most WEB_WORKERS x WEB_THREADS of them (16 by default),
which must fit, over every replica and beside the other processes, in max_connections."""

import os


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdecimal() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


# A fixed thread pool, unlike daphne's thread per request: a connection kept by a thread is
# reused by every request it serves, instead of forking a PostgreSQL backend for each. Ten
# minutes, not one: the threads' connections, opened together at start, are replaced
# together, a burst of new backends each time.
os.environ.setdefault("CONN_MAX_AGE", "600")

wsgi_app = "multica.wsgi:application"
bind = ["0.0.0.0:8000"]
worker_class = "gthread"
workers = _positive_int("WEB_WORKERS", 2)
threads = _positive_int("WEB_THREADS", 8)
# Longer than the proxy's idle upstream timeout, so the proxy, not gunicorn, closes an idle
# connection: a request is never sent down a connection gunicorn is closing.
keepalive = 75
