"""Where a request came from, as sign-in lockouts and the audit log record it."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from metrics_source.runtime.front import PEER_META, TOKEN_META


def client_address(request: HttpRequest) -> str | None:
    """The peer's address; behind the TLS proxy (``BEHIND_TLS_PROXY``), the address that proxy
    appended last to X-Forwarded-For, the one hop a client cannot write for itself.

    A request from a Unix socket (no peer address) that carries this run's front token came
    through the web front, which names its own peer in a header it never lets a client set
    (metrics_source.runtime.front); any other has no known address."""
    address = request.META.get("REMOTE_ADDR", "")
    token = settings.WEB_FRONT_TOKEN
    if not address and token:
        sent = request.META.get(TOKEN_META, "")
        if hmac.compare_digest(sent.encode(), token.encode()):
            address = request.META.get(PEER_META, "")
    if getattr(settings, "BEHIND_TLS_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            address = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
