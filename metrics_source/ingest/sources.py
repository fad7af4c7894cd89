"""Services for sources: create one, rotate its write key, enable or disable them (the admin
and the source_* commands both call these). The key is returned once and only its digest is
stored."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from metrics_source.ingest.auth import generate_write_key, hash_write_key, write_key_cache_clear
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


def source_rotate_write_key(*, source: Source) -> str:
    """Replace the write key; returns the new key. The old one stops working at once in this
    process and within SOURCE_CACHE_SECONDS in the other web processes."""
    write_key = _assign_write_key(source)
    source.save(update_fields=["write_key_hash", "write_key_hint", "updated_at"])
    return write_key


def sources_set_enabled(*, source_ids: list[int], enabled: bool) -> int:
    """Enable or disable sources; returns how many changed. A bulk update sends no save
    signal, so the write-key cache is emptied here (and again at commit)."""
    updated = Source.objects.filter(pk__in=source_ids).update(enabled=enabled)
    write_key_cache_clear()
    transaction.on_commit(write_key_cache_clear)
    return updated
