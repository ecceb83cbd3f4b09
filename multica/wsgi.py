"""WSGI entry point (granian, `python -m multica.web`): the admin and the daemon API over plain
HTTP. WebSockets are daphne's (multica.asgi); a proxy in front sends /ws/ there and the rest
here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")

django_application = get_wsgi_application()
# granian starts every request's environ from a copy of the process environment. Passed on,
# DATABASE_URL's password and SECRET_KEY would sit in request.META, where error reports show
# it, and a variable named HTTP_* would pass for a header the client never sent. The keys every
# request sets itself stay, whatever the environment holds.
REQUEST_KEYS = {
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
    "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
    "GATEWAY_INTERFACE", "SERVER_SOFTWARE",
}  # fmt: skip
PROCESS_ENVIRONMENT = {k: v for k, v in os.environ.items() if k not in REQUEST_KEYS}


def application(environ, start_response):
    for name, value in PROCESS_ENVIRONMENT.items():
        if environ.get(name) == value:
            del environ[name]
    return django_application(environ, start_response)
