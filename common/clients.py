"""Who a request comes from, as the proxy saw it."""

from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's address: X-Real-IP, which the proxy sets (overwriting any a client sent),
    else the connection's own. The web process is reachable only through the proxy (it
    listens on loopback or compose's network), so no client can set the header itself."""
    return request.META.get("HTTP_X_REAL_IP") or request.META.get("REMOTE_ADDR")
