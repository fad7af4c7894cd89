"""Services for sources: create one, rotate its write key or signing secret (the previous one
stays valid for a grace period that can be ended early), enable or disable them (the admin
and the source_* commands both call these). A key is returned once and only its digest is
stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from metrics_source.ingest.auth import (
    generate_write_key,
    hash_write_key,
    previous_key_until,
    previous_secret_until,
    write_key_cache_clear,
)
from metrics_source.models import Source


def _assign_write_key(source: Source) -> str:
    write_key = generate_write_key()
    source.write_key_hash = hash_write_key(write_key)
    source.write_key_hint = write_key[-4:]
    return write_key


def source_prepare_new(*, source: Source) -> str:
    """Give an unsaved source its first write key; returns the key (shown once)."""
    if not source.slug:
        source.slug = slugify(source.name)
    return _assign_write_key(source)


def source_save_new(*, source: Source) -> str:
    """Check and save a new source with its first write key; returns the key (shown once).
    Raises ValidationError (a taken name or slug, a bad slug, a secret too long)."""
    write_key = source_prepare_new(source=source)
    source.full_clean()
    source.save()
    return write_key


def source_create(
    *, name: str, slug: str = "", webhook_signing_secret: str = "", enabled: bool = True
) -> tuple[Source, str]:
    source = Source(
        name=name, slug=slug, webhook_signing_secret=webhook_signing_secret, enabled=enabled
    )
    return source, source_save_new(source=source)


def source_find(slug_or_id: str) -> Source | None:
    """The source with this slug, or else with this id."""
    source = Source.objects.filter(slug=slug_or_id).first()
    if source is None and slug_or_id.isdigit():
        source = Source.objects.filter(pk=int(slug_or_id)).first()
    return source


# How long a rotated-out key or secret stays valid unless the operator chooses otherwise:
# a day is enough to redeploy every sender; the longest grace is a month, so a forgotten
# old key cannot stay valid for good.
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)


def _grace_until(grace: timedelta) -> datetime | None:
    """When a previous key given ``grace`` stops working; None for no grace at all."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValueError(f"a grace period is between 0 and {MAX_GRACE.days} days")
    return timezone.now() + grace if grace else None


class GraceInProgress(ValueError):
    """A rotation with grace while the previous key (or secret) is still in its own: it
    would silently end the one most senders may still use. End that grace first, or rotate
    with no grace (every old key stops now: the way out of a leak)."""


def source_rotate_write_key(*, source: Source, grace: timedelta = DEFAULT_GRACE) -> str:
    """Replace the write key; returns the new key. The old one keeps working for ``grace``;
    with no grace it (and any previous key still in grace) stops at once in this process and
    within SOURCE_CACHE_SECONDS in the other web processes. GraceInProgress when a previous
    key is still valid and ``grace`` is not zero."""
    until = _grace_until(grace)
    with transaction.atomic():
        # Locked and read afresh: two rotations at once would otherwise both replace the
        # key this instance holds, and one of the keys handed out would never work.
        current = Source.objects.select_for_update().get(pk=source.pk)
        in_grace = previous_key_until(current)
        if until and in_grace:
            raise GraceInProgress(
                f"{current.name}'s previous key (msk_…{current.previous_write_key_hint}) is "
                f"still valid until {in_grace.isoformat(timespec='minutes')}: end that grace "
                "period first, or rotate with no grace to stop every old key now"
            )
        old_hash, old_hint = current.write_key_hash, current.write_key_hint
        write_key = _assign_write_key(source)
        source.previous_write_key_hash = old_hash if until else None
        source.previous_write_key_hint = old_hint if until else ""
        source.previous_write_key_expires_at = until
        source.save(
            update_fields=[
                "write_key_hash",
                "write_key_hint",
                "previous_write_key_hash",
                "previous_write_key_hint",
                "previous_write_key_expires_at",
                "updated_at",
            ]
        )
    return write_key


def source_end_write_key_grace(*, source: Source) -> bool:
    """The previous write key stops working now; False (and nothing saved) when there was
    none in grace."""
    if previous_key_until(source) is None:
        return False
    source.previous_write_key_hash = None
    source.previous_write_key_hint = ""
    source.previous_write_key_expires_at = None
    source.save(
        update_fields=[
            "previous_write_key_hash",
            "previous_write_key_hint",
            "previous_write_key_expires_at",
            "updated_at",
        ]
    )
    return True


def source_replace_webhook_secret(
    *, source: Source, new_secret: str, grace: timedelta = DEFAULT_GRACE
) -> None:
    """Set a new signing secret on ``source`` (not saved: the admin form saves it with the
    rest). The one it replaces keeps verifying webhooks for ``grace``, while Customer.io's
    key is rotated; an empty ``new_secret`` removes both (webhooks are then refused)."""
    old_secret = source.webhook_signing_secret
    if new_secret == old_secret:
        return  # the same secret typed again changes nothing, not even the grace period
    until = _grace_until(grace) if new_secret else None
    in_grace = previous_secret_until(source)
    if until and in_grace:
        raise GraceInProgress(
            "the previous signing secret is still accepted until "
            f"{in_grace.isoformat(timespec='minutes')}: stop accepting it first, or replace "
            "this one with no grace"
        )
    keep_old = bool(until and old_secret)
    source.previous_webhook_signing_secret = old_secret if keep_old else ""
    source.previous_webhook_secret_expires_at = until if keep_old else None
    source.webhook_signing_secret = new_secret


def source_end_webhook_secret_grace(*, source: Source) -> bool:
    """The previous signing secret stops verifying now; False (and nothing saved) when there
    was none in grace."""
    if previous_secret_until(source) is None:
        return False
    source.previous_webhook_signing_secret = ""
    source.previous_webhook_secret_expires_at = None
    source.save(
        update_fields=[
            "previous_webhook_signing_secret",
            "previous_webhook_secret_expires_at",
            "updated_at",
        ]
    )
    return True


def sources_set_enabled(*, source_ids: list[int], enabled: bool) -> int:
    """Enable or disable sources; returns how many changed. A bulk update sends no save
    signal, so the write-key cache is emptied here (and again at commit)."""
    updated = Source.objects.filter(pk__in=source_ids).update(enabled=enabled)
    write_key_cache_clear()
    transaction.on_commit(write_key_cache_clear)
    return updated
