"""The session and user of a WebSocket's handshake, put in its scope as channels'
AuthMiddlewareStack puts them, without the wrapper its session middleware puts around `send`.

That wrapper looks at the session on every message sent, to save it on an HTTP response; it
never saves on a socket, and a socket never changes its session, yet in a mass outage it was a
tenth of the socket server's time (one look per event per socket)."""

from importlib import import_module

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings


class HandshakeSessionMiddleware:
    def __init__(self, inner):
        self.inner = inner
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        # Lazy: read from the database only when the user is resolved, off the event loop.
        session = self.session_store(scope["cookies"].get(settings.SESSION_COOKIE_NAME))
        return await self.inner(dict(scope, session=session), receive, send)


def handshake_auth(inner):
    """channels' AuthMiddlewareStack, with the session middleware above."""
    return CookieMiddleware(HandshakeSessionMiddleware(AuthMiddleware(inner)))
