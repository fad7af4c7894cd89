"""Refuse destination URLs that point inside the network (SSRF), unless the setting
FORWARDING_ALLOW_PRIVATE_NETWORKS allows them (development, tests).

Checked when a destination is saved and again before every request (DNS can change). The
connection then resolves the name once more, so a DNS server that answers differently
within that moment is not covered; an egress firewall is the complete answer.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UrlRefused(ValueError):
    """The URL may not be used; the message says why (safe to show)."""


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Cloud metadata services (169.254.169.254 is link-local already; this is AWS's IPv6).
        or address == ipaddress.ip_address("fd00:ec2::254")
    )


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise UrlRefused unless the URL is https to a public address (or the setting allows
    private networks and plain http)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UrlRefused("the URL must be http(s)://host/...")
    allow_private = settings.FORWARDING_ALLOW_PRIVATE_NETWORKS
    if parts.scheme == "http" and not allow_private:
        raise UrlRefused(
            "plain http:// is refused; use https:// (FORWARDING_ALLOW_PRIVATE_NETWORKS)"
        )
    if allow_private or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UrlRefused(f"cannot resolve {parts.hostname}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if _refused_address(address):
            raise UrlRefused(
                f"{parts.hostname} resolves to {address}, a loopback, private, link-local or "
                "metadata address (FORWARDING_ALLOW_PRIVATE_NETWORKS)"
            )
