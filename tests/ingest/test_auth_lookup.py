"""The hot path's source lookups: plain SQL whose columns come from the model, read back with
``Source.from_db`` into the same source the ORM gives."""

from __future__ import annotations

import pytest

from metrics_source.ingest.auth import (
    _source_query,
    source_for_webhook_slug,
    source_for_write_key,
    write_key_cache_clear,
)
from metrics_source.models import Source

pytestmark = pytest.mark.django_db

ALL_FIELDS = {field.attname for field in Source._meta.concrete_fields}


@pytest.fixture(autouse=True)
def _empty_cache():
    write_key_cache_clear()
    yield
    write_key_cache_clear()


def _values(source: Source) -> dict:
    # With their types: True == 1, and an id read into ``enabled`` must not pass for it.
    return {name: (type(getattr(source, name)), getattr(source, name)) for name in ALL_FIELDS}


def test_the_write_key_lookup_gives_the_stored_source(source):
    stored = Source.objects.get(pk=source.source.pk)
    found = source_for_write_key(source.write_key)
    # Read before anything else is touched: a deferred field would load on access.
    loaded = (found.pk, found.name, found.enabled)
    assert loaded == (stored.pk, stored.name, True) and found.enabled is True
    assert found.get_deferred_fields() == ALL_FIELDS - {
        "id", "name", "enabled", "write_key_hash", "previous_write_key_expires_at"
    }  # fmt: skip
    # The fields left out load on demand, with their stored values.
    assert _values(found) == _values(stored)


def test_the_webhook_lookup_gives_the_stored_source_with_its_secret(source):
    stored = Source.objects.get(pk=source.source.pk)
    found, unusable = source_for_webhook_slug(stored.slug)
    assert unusable == ""
    loaded = (found.pk, found.name, found.enabled, found.webhook_signing_secret)
    assert loaded == (stored.pk, stored.name, True, source.secret) and found.enabled is True
    assert found.get_deferred_fields() == ALL_FIELDS - {
        "id", "name", "webhook_signing_secret", "enabled",
        "previous_webhook_signing_secret", "previous_webhook_secret_expires_at",
    }  # fmt: skip
    assert _values(found) == _values(stored)


def test_the_query_follows_the_model_whatever_order_the_fields_are_named_in():
    model_order = [f.attname for f in Source._meta.concrete_fields if f.name in {"id", "enabled"}]
    names, sql = _source_query({"enabled", "id"}, where=("slug",))
    assert names == model_order == ["id", "enabled"]
    assert sql == "SELECT id, enabled FROM metrics_source_source WHERE slug = %s"
    _, either = _source_query({"id"}, where=("write_key_hash", "previous_write_key_hash"))
    assert either.endswith("WHERE write_key_hash = %s OR previous_write_key_hash = %s")
    with pytest.raises(ValueError, match="no concrete fields \\['secret'\\]"):
        _source_query({"id", "secret"}, where=("slug",))
