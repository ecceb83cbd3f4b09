"""WSGI entry point (gunicorn): the admin and the daemon API over plain HTTP. WebSockets are
daphne's (multica.asgi); a proxy in front sends /ws/ there and everything else here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
# gunicorn's threads are a fixed pool, so a thread's connection is reused by every request it
# serves: no PostgreSQL backend forked per heartbeat. (Under ASGI it would be a leak.)
os.environ.setdefault("CONN_MAX_AGE", "60")

application = get_wsgi_application()
