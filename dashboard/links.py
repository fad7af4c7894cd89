"""Which URLs from events the pages may render as links, and which of them are one link.

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


# Query parameters that say where a click came from, not where it goes: a link with and
# without them is one link. utm_* (Google Analytics), click ids of ad networks, Mailchimp's
# and HubSpot's, Marketo's token.
TRACKING_PARAMETERS = (
    r"utm_[a-z0-9_]*|gclid|dclid|fbclid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi|mkt_tok"
)


def link_without_tracking_sql(column: str) -> str:
    """SQL giving the URL in ``column`` without its tracking parameters (and without a ? or &
    left dangling)."""
    stripped = f"regexp_replace({column}, '([?&])({TRACKING_PARAMETERS})=[^&#]*', '\\1', 'gi')"
    squeezed = f"regexp_replace({stripped}, '([?&])&+', '\\1', 'g')"
    return f"regexp_replace({squeezed}, '[?&]+(#|$)', '\\1')"
