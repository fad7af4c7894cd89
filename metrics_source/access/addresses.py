"""Where a request came from, as sign-in lockouts and the audit log record it."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The peer's address; behind the TLS proxy (``BEHIND_TLS_PROXY``), the address that proxy
    appended last to X-Forwarded-For, the one hop a client cannot write for itself."""
    address = request.META.get("REMOTE_ADDR", "")
    if getattr(settings, "BEHIND_TLS_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            address = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
