"""Failure messages made comparable: the same bounce reason for different recipients is one
row. Addresses, ids and long numbers are replaced by placeholders in SQL (so the grouping
happens in PostgreSQL), and the SMTP status class is read from what is left: a 5.x.x (or 5xx)
answer is a hard bounce, a 4.x.x (or 4xx) one soft, as RFC 3463 and RFC 5321 define them."""

from __future__ import annotations

import re


def _replace(expression: str, pattern: str, placeholder: str) -> str:
    return f"regexp_replace({expression}, '{pattern}', '{placeholder}', 'gi')"


# Applied in order to a failure message column: an email address (with its angle brackets),
# a UUID, a token of 16 or more letters and digits that has a digit (message ids, device
# tokens), then any run of 6 or more digits (phone numbers, ids). SMTP codes (550, 5.1.1)
# are too short to be touched.
_PLACEHOLDERS = (
    (r"<?[^\s<>@]+@[^\s<>@]+\.[a-z]{2,}>?", "<address>"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>"),
    (r"\m(?=[a-z0-9_=+/-]*[0-9])[a-z0-9_=+/-]{16,}", "<id>"),
    (r"\+?[0-9]{6,}", "<number>"),
)


def normalised_sql(column: str) -> str:
    """SQL giving ``column`` with its addresses, ids and numbers replaced."""
    expression = column
    for pattern, placeholder in _PLACEHOLDERS:
        expression = _replace(expression, pattern, placeholder)
    return expression


_ENHANCED = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
_REPLY = re.compile(r"^\s*([245])\d\d(?:[\s-]|$)")


def smtp_class(message: str) -> tuple[str, str]:
    """("hard", "5.1.1"), ("soft", "4.2.2"), ("hard", "550") or ("", "") when the message
    carries no SMTP status (a push or SMS failure, say)."""
    found = _ENHANCED.search(message) or _REPLY.search(message)
    if found is None:
        return "", ""
    code = found.group(0).strip().rstrip("-")
    kind = {"5": "hard", "4": "soft"}.get(found.group(1), "")
    return kind, code if kind else ""
