"""The close codes of the workspace socket (README's table), and daphne taught to send them.

Every refusal is sent after accepting the handshake: a refusal during it reaches a browser as a
bare HTTP 403, with no code to act on.
"""

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

POLICY_VIOLATION = 1008  # the client sent a frame: the socket is listen-only
TRY_AGAIN_LATER = 1013  # the channel layer (Redis) is down
BAD_REQUEST = 4400  # `after` is not a whole number of at least 0
NOT_LOGGED_IN = 4401  # no session, or it ended (logout, password change) while open
NOT_A_MEMBER = 4403  # not a member of the workspace (or no such workspace), or removed
NOT_FOUND = 4404  # no socket at this path
TOO_MANY_SOCKETS = 4429  # the user holds WEBSOCKETS_PER_USER_MAX sockets already

# Codes RFC 6455 lets a server send that autobahn's sendClose refuses: it checks them against
# what a browser's close() may send (1000, 3000-4999), and daphne turns the refusal into a
# traceback and 1011. autobahn's own protocol-level close (sendCloseFrame) sends them as is.
_SERVER_CODES = {1001, POLICY_VIOLATION, 1011, 1012, TRY_AGAIN_LATER}


class _Protocol(WebSocketProtocol):
    def serverClose(self, code=None):
        if code in _SERVER_CODES:
            self.sendCloseFrame(code=code)
        else:
            super().serverClose(code)


def let_daphne_send_server_codes() -> None:
    """Makes daphne's sockets, from now on, send the codes above as they are."""
    WebSocketFactory.protocol = _Protocol
