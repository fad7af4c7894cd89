"""Which URLs from events the pages may render as links.

A clicked link's ``href`` comes from whoever holds a write key, so it may be
``javascript:...``, ``data:...`` or a form that hides one from a naive check (" javascript:",
"JaVaScRiPt:", "java<TAB>script:", entity-encoded colons). Only an absolute http(s) URL
becomes a link; anything else is shown as text. The URL is parsed, not prefix-checked, and
any character a browser would strip or reinterpret before reading the scheme (spaces, control
characters, backslashes) disqualifies it, so the browser reads the scheme that was checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LINK_SCHEMES = frozenset({"http", "https"})


def http_link(text: object) -> str | None:
    """``text`` when it is an absolute http(s) URL with a host, else None."""
    if not isinstance(text, str) or not text:
        return None
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in text):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 (a port that is not a number raises ValueError)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not host:
        return None
    return text
