"""Who sent a request: write keys (the tracking API) and signed reporting webhooks.

Keys are generated and hashed here, the ``Authorization`` header read, and the source looked up
by key digest (cached per process) or webhook slug, in plain SQL since every hot request does it;
``AuthError`` carries the 401 or 403 the sender gets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from metrics_source.models import Source
from metrics_source.runtime.db import hot_path_rows

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


def _source_query(fields: set[str], *, where: tuple[str, ...]) -> tuple[list[str], str]:
    """(field names, SELECT of their columns) for ``Source.from_db``, which reads the values
    in the model's field order: both come from the model, so a field added or moved there
    cannot shift a value into the wrong attribute. The row matches when any of the ``where``
    fields equals its parameter (one parameter per field)."""
    # name -> (attname, column), in the model's order (every concrete field has a column).
    concrete = {
        field.name: (field.attname, field.column)
        for field in Source._meta.concrete_fields
        if field.column
    }
    unknown = (fields | set(where)) - concrete.keys()
    if unknown:
        raise ValueError(f"Source has no concrete fields {sorted(unknown)}")
    chosen = [names for name, names in concrete.items() if name in fields]
    columns = ", ".join(column for _attname, column in chosen)
    matches = " OR ".join(f"{concrete[name][1]} = %s" for name in where)
    sql = f"SELECT {columns} FROM {Source._meta.db_table} WHERE {matches}"  # noqa: S608
    return [attname for attname, _column in chosen], sql


# What a tracking request needs of its source; the other fields load lazily if asked for.
# A key matches as the current one or as the previous one, whose grace period is checked on
# every request (a cached row must not stretch it).
_SOURCE_FIELDS, _SOURCE_BY_KEY_HASH = _source_query(
    {"id", "name", "enabled", "write_key_hash", "previous_write_key_expires_at"},
    where=("write_key_hash", "previous_write_key_hash"),
)

# Per-process cache of write-key digest -> (monotonic expiry, the source's row). Every tracking
# request authenticates, and a database round trip costs more than the rest of a one-event
# request's Python work. Entries live SOURCE_CACHE_SECONDS, so a key rotated or a source
# disabled in another process stops working within that time; saving or deleting a source
# empties this process's cache at once. Only known keys are kept: a stream of wrong keys
# cannot grow it, and a new key works everywhere as soon as it is saved.
_SOURCE_CACHE: dict[str, tuple[float, tuple[Any, ...]]] = {}
_SOURCE_CACHE_MAX_ENTRIES = 1000


def write_key_cache_clear() -> None:
    """Forget every cached source in this process (sources changed without a model save,
    e.g. ``QuerySet.update``, should call this)."""
    _SOURCE_CACHE.clear()


@receiver(post_save, sender=Source, dispatch_uid="metrics_source.ingest.auth.source_saved")
@receiver(post_delete, sender=Source, dispatch_uid="metrics_source.ingest.auth.source_deleted")
def _source_changed(**kwargs: Any) -> None:
    write_key_cache_clear()
    # Once more at commit: a request served in between could have cached the old row again.
    transaction.on_commit(write_key_cache_clear)


def _source_row_by_key_hash(key_hash: str) -> tuple[Any, ...] | None:
    ttl = settings.SOURCE_CACHE_SECONDS
    now = time.monotonic()
    cached = _SOURCE_CACHE.get(key_hash)
    if cached is not None and cached[0] > now:
        return cached[1]
    # Plain SQL: it skips the ORM's per-query compile cost.
    rows = hot_path_rows(_SOURCE_BY_KEY_HASH, [key_hash, key_hash])
    row = rows[0] if rows else None
    if row is None:
        _SOURCE_CACHE.pop(key_hash, None)
    elif ttl > 0:
        if len(_SOURCE_CACHE) >= _SOURCE_CACHE_MAX_ENTRIES:
            _SOURCE_CACHE.clear()
        _SOURCE_CACHE[key_hash] = (now + ttl, tuple(row))
    return row


def _source_by_key_hash(key_hash: str) -> Source | None:
    row = _source_row_by_key_hash(key_hash)
    # A fresh instance per request (callers may change it); it loads its other fields lazily,
    # as any deferred model instance does.
    return None if row is None else Source.from_db(None, _SOURCE_FIELDS, row)


def source_for_write_key(write_key: str | None) -> Source:
    """The enabled source owning this key; AuthError (401 unknown, 403 disabled) otherwise.

    A change made to a source in another process shows here within SOURCE_CACHE_SECONDS.
    """
    if not write_key:
        raise AuthError(401, "missing write key: use HTTP Basic auth with the write key as user")
    key_hash = hash_write_key(write_key)
    source = _source_by_key_hash(key_hash)
    if source is None or not _key_is_current_or_in_grace(source, key_hash):
        # A previous key past its grace period is as unknown as any other.
        raise AuthError(401, "unknown write key")
    if not source.enabled:
        raise AuthError(403, "this source is disabled")
    return source


def _key_is_current_or_in_grace(source: Source, key_hash: str) -> bool:
    """The row matched the current or the previous digest: which, and is the previous one
    still in its grace period? (The row's previous digest is not loaded: a match that is not
    the current digest can only be the previous one.)"""
    if hmac.compare_digest(source.write_key_hash, key_hash):
        return True
    until = source.previous_write_key_expires_at
    return until is not None and until > timezone.now()


# What a SlugField accepts; anything else (a NUL byte, a very long path) names no source and
# must not reach the database, which would refuse it with an error instead of "not found".
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")
_WEBHOOK_SOURCE_FIELDS, _SOURCE_BY_SLUG = _source_query(
    {
        "id",
        "name",
        "webhook_signing_secret",
        "previous_webhook_signing_secret",
        "previous_webhook_secret_expires_at",
        "enabled",
    },
    where=("slug",),
)


def previous_key_until(source: Source) -> datetime | None:
    """Until when the source's previous write key is still accepted; None when it is not."""
    until = source.previous_write_key_expires_at
    return until if source.previous_write_key_hash and until and until > timezone.now() else None


def previous_secret_until(source: Source) -> datetime | None:
    """Until when the previous signing secret still verifies webhooks; None when it does not."""
    until = source.previous_webhook_secret_expires_at
    if source.previous_webhook_signing_secret and until and until > timezone.now():
        return until
    return None


def webhook_secrets(source: Source) -> list[str]:
    """The signing secrets a webhook for this source may be signed with: the current one, and
    the previous one while its grace period lasts (Customer.io's key is being rotated)."""
    if previous_secret_until(source) is None:
        return [source.webhook_signing_secret]
    return [source.webhook_signing_secret, source.previous_webhook_signing_secret]


def source_for_webhook_slug(slug: str) -> tuple[Source | None, str]:
    """The enabled source that ``/webhooks/customerio/<slug>`` names, with its signing
    secret, and ``""``; or None and why not (for the log only: the sender is told the same
    for an unknown, a disabled and a secretless source, so slugs cannot be enumerated).

    Plain SQL through hot_path_rows, as the write-key lookup: no ORM compile per request, and
    a connection the server ended since the last request is replaced instead of failing it.
    """
    rows = hot_path_rows(_SOURCE_BY_SLUG, [slug]) if _SLUG.fullmatch(slug) else []
    if not rows:
        return None, "no source has this slug"
    source = Source.from_db(None, _WEBHOOK_SOURCE_FIELDS, rows[0])
    if not source.enabled:
        return None, f"source {source.name!r} is disabled"
    if not source.webhook_signing_secret:
        return None, f"source {source.name!r} has no webhook signing secret (set it in the admin)"
    return source, ""


# Checked against when a slug names no usable source, so such a request costs what a wrong
# signature costs and gets the same answer. Random per process: nothing can match it.
STAND_IN_SECRET = secrets.token_hex(32)


def verify_customerio_signature(
    *,
    signing_secrets: list[str],
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> int:
    """Check ``X-CIO-Signature`` = hex HMAC-SHA256(secret, ``v0:<timestamp>:<body>``) for
    one of ``signing_secrets`` (two while a signing key is rotated; each is checked, so the time
    taken does not tell which one matched).

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
    signature = signature_header.strip().lower()
    # compare_digest refuses non-ASCII text; such a header cannot be a hex digest anyway.
    if not signature.isascii():
        raise AuthError(401, "X-CIO-Signature does not match the request body")
    matched = False
    for secret in signing_secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise AuthError(401, "X-CIO-Signature does not match the request body")
    return sent_at
