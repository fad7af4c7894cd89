"""Refuse destination URLs that point inside the network (SSRF), unless the setting
FORWARDING_ALLOW_PRIVATE_NETWORKS allows them (development, tests).

One parse serves the check and the connection: ``check_url`` reads the URL with urllib3's own
parser (the HTTP client's), refuses anything two parsers could read differently (a backslash,
credentials, control characters or spaces, a fragment, numeric host spellings other than
dotted decimal), resolves the name once and returns a ``Target`` holding the addresses it
checked. ``http.post`` connects to those addresses only, so a DNS answer that changes between
the check and the connection (rebinding) cannot move the request inside the network.

Checked when a destination is saved and again before every request (DNS can change).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from django.conf import settings
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without space, backslash or the characters no URL of ours needs.
_REFUSED_CHARACTERS = re.compile(r"[^\x21-\x7e]|\\")
# A DNS name: labels of letters, digits and inner hyphens (punycode for others), a final dot
# allowed; its last label is not all digits (which would make it a numeric address).
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?:{_LABEL}\.)*(?!\d+\.?$){_LABEL}\.?$")

# IPv6 ranges that carry an IPv4 address inside (or route to one somewhere else): 6to4,
# Teredo, NAT64 (well-known and local-use prefixes), IPv4-compatible and IPv4-mapped. The
# IPv4 inside could be anything, so the whole range is refused.
_TUNNELS = [
    ipaddress.ip_network(network)
    for network in (
        "2002::/16", "2001::/32", "64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0/96",
    )
]  # fmt: skip
_ALWAYS_REFUSED = [
    # Carrier-grade NAT, where some clouds put their metadata service (not "private" to
    # Python, and not global either; named here so the reason is plain).
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("192.0.0.0/24"),
    # AWS's IPv6 metadata address.
    ipaddress.ip_network("fd00:ec2::254/128"),
]


class UrlRefused(ValueError):
    """The URL may not be used; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a checked URL's requests go: the name (for the Host header, TLS SNI and the
    certificate check) and the addresses that were checked, in the resolver's order."""

    scheme: str
    host: str
    port: int
    request_uri: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def refused_address(address: Address) -> str | None:
    """Why a connection to this address is refused, or None for a public address."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if isinstance(address, ipaddress.IPv6Address) and any(
        address in network for network in _TUNNELS
    ):
        return "an IPv6 form that carries an IPv4 address (6to4, Teredo, NAT64, mapped)"
    if any(address in network for network in _ALWAYS_REFUSED):
        return "a carrier-grade NAT, IETF protocol or metadata address"
    if address.is_link_local:
        return "a link-local (metadata) address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved:
        return "a multicast or reserved address"
    if not address.is_global:
        return "an address that is not globally routable"
    return None


def _allowed_ports() -> frozenset[int]:
    return frozenset(getattr(settings, "FORWARDING_ALLOWED_PORTS", (443,)))


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request URI), or UrlRefused for a URL two parsers could read two
    ways."""
    if _REFUSED_CHARACTERS.search(url):
        raise UrlRefused(
            "the URL may not contain spaces, control characters, backslashes or non-ASCII "
            "characters (write an international name in its xn-- form)"
        )
    if "#" in url:
        raise UrlRefused("the URL may not have a #fragment")
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise UrlRefused("the URL cannot be read; it must be https://host/path") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or not parts.host:
        raise UrlRefused("the URL must be http(s)://host/...")
    if parts.auth is not None or "@" in (url.split("//", 1)[-1].split("/", 1)[0]):
        raise UrlRefused("the URL may not carry a user name or password (use extra headers)")
    host = parts.host.lower()
    literal = _literal_address(host)
    if literal is None and not _HOSTNAME.match(host):
        raise UrlRefused(
            f"{host!r} is not a host name or an address in its usual form (four decimal "
            "numbers, or IPv6 in brackets)"
        )
    if literal is not None:
        # ipaddress reads IPv4 only as dotted decimal; the resolver would also read "0x7f.1"
        # or "2130706433", which the host-name pattern above has refused.
        host = str(literal)
    port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    if not 0 < port < 65536:
        raise UrlRefused(f"port {port} is not a port")
    return scheme, host, port, parts.request_uri


def _resolve(host: str, port: int) -> tuple[Address, ...]:
    literal = _literal_address(host)
    if literal is not None:
        return (literal,)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UrlRefused(f"cannot resolve {host}: {error}") from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UrlRefused(f"cannot resolve {host}")
    return tuple(found)


def check_url(url: str) -> Target:
    """The URL's ``Target``, or UrlRefused unless it is https, on an allowed port
    (``FORWARDING_ALLOWED_PORTS``), to a name whose every address is public. With
    FORWARDING_ALLOW_PRIVATE_NETWORKS on, plain http, any port and any address are allowed;
    the URL must still read the same to every parser."""
    scheme, host, port, request_uri = _parse(url)
    allow_private = settings.FORWARDING_ALLOW_PRIVATE_NETWORKS
    if scheme == "http" and not allow_private:
        raise UrlRefused(
            "plain http:// is refused; use https:// (FORWARDING_ALLOW_PRIVATE_NETWORKS)"
        )
    if not allow_private and port not in _allowed_ports():
        allowed = ", ".join(str(allowed) for allowed in sorted(_allowed_ports()))
        raise UrlRefused(f"port {port} is not allowed (FORWARDING_ALLOWED_PORTS: {allowed})")
    addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = refused_address(address)
            if reason:
                literal = host == str(address)
                where = f"{address} is" if literal else f"{host} resolves to {address},"
                raise UrlRefused(f"{where} {reason} (FORWARDING_ALLOW_PRIVATE_NETWORKS)")
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        request_uri=request_uri,
        addresses=tuple(str(address) for address in addresses),
    )
