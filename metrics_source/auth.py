"""Write keys and reporting-webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from metrics_source.db import hot_path_cursor
from metrics_source.models import Source

WRITE_KEY_PREFIX = "msk_"


class AuthError(Exception):
    """Authentication failed; ``status`` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def generate_write_key() -> str:
    return WRITE_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_write_key(write_key: str) -> str:
    # Write keys are 256-bit random tokens, so a plain digest is as strong as a slow hash.
    return hashlib.sha256(write_key.encode()).hexdigest()


def write_key_from_authorization(header: str) -> str | None:
    """The write key in ``Basic base64(writeKey:)`` or ``Bearer writeKey``, else None."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or a header that is not ASCII
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    return None


_SOURCE_BY_KEY_HASH = (
    f"SELECT id, name, enabled FROM {Source._meta.db_table} WHERE write_key_hash = %s"  # noqa: S608
)


def _source_by_key_hash(key_hash: str) -> Source | None:
    # Runs once per tracking request: plain SQL skips the ORM's per-query compile cost. The
    # instance loads its other fields lazily, as any deferred model instance does.
    with hot_path_cursor() as cursor:
        cursor.execute(_SOURCE_BY_KEY_HASH, [key_hash], prepare=True)
        row = cursor.fetchone()
    return None if row is None else Source.from_db(None, ["id", "name", "enabled"], row)


def source_for_write_key(write_key: str | None) -> Source:
    """The enabled source owning this key; AuthError (401 unknown, 403 disabled) otherwise."""
    if not write_key:
        raise AuthError(401, "missing write key: use HTTP Basic auth with the write key as user")
    source = _source_by_key_hash(hash_write_key(write_key))
    if source is None:
        raise AuthError(401, "unknown write key")
    if not source.enabled:
        raise AuthError(403, "this source is disabled")
    return source


def verify_customerio_signature(
    *,
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> int:
    """Check ``X-CIO-Signature`` = hex HMAC-SHA256(secret, ``v0:<timestamp>:<body>``).

    Returns the request's timestamp (unix seconds); raises AuthError(401) with the reason.
    """
    if not timestamp_header or not signature_header:
        raise AuthError(401, "missing X-CIO-Timestamp or X-CIO-Signature header")
    timestamp = timestamp_header.strip()
    # ASCII digits of a sane length only: int() alone would accept "1_000" or a 5,000-digit
    # number that cannot be compared with the clock.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise AuthError(401, "X-CIO-Timestamp must be unix seconds")
    sent_at = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise AuthError(
            401, f"X-CIO-Timestamp is more than {tolerance_seconds} s from the server's clock"
        )
    # The timestamp exactly as sent is what the sender signed.
    signed = b"v0:" + timestamp.encode() + b":" + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    signature = signature_header.strip().lower()
    # compare_digest refuses non-ASCII text; such a header cannot be a hex digest anyway.
    if not signature.isascii() or not hmac.compare_digest(expected, signature):
        raise AuthError(401, "X-CIO-Signature does not match the request body")
    return sent_at
