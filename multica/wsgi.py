"""WSGI entry point (granian, `python -m multica.web`): the admin and the daemon API over plain
HTTP. WebSockets are daphne's (multica.asgi); a proxy in front sends /ws/ there and the rest
here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")

application = get_wsgi_application()
