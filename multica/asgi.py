"""ASGI entry point (daphne): the admin over HTTP, the workspace event stream over WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multica.settings")
# Sets Django up before anything below imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realtime.closing import let_daphne_send_server_codes  # noqa: E402
from realtime.handshake import handshake_auth  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

# 1008 and 1013 reach the browser as they are, not as daphne's 1011 and a traceback.
let_daphne_send_server_codes()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(handshake_auth(URLRouter(websocket_urlpatterns))),
    }
)
