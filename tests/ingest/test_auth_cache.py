"""The per-process write-key cache: a change made elsewhere (here: a QuerySet.update, which sends
no signal, as another process's save does not) shows within SOURCE_CACHE_SECONDS; a save or
delete in this process shows at once."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest
from django.test import override_settings

from metrics_source.ingest.auth import (
    AuthError,
    hash_write_key,
    source_for_write_key,
    write_key_cache_clear,
)
from metrics_source.ingest.sources import source_rotate_write_key
from metrics_source.models import Event, Source
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db

TTL = 0.2


@pytest.fixture(autouse=True)
def _empty_cache():
    write_key_cache_clear()
    yield
    write_key_cache_clear()


def _status(write_key: str) -> int:
    try:
        source_for_write_key(write_key)
    except AuthError as error:
        return error.status
    return 200


def _track(client, write_key: str, message_id: str) -> int:
    body = orjson.dumps({"event": "Email Opened", "userId": "u-1", "messageId": message_id})
    response = client.post(
        "/v1/track",
        body,
        content_type="application/json",
        headers={"Authorization": basic_auth(write_key)},
    )
    return response.status_code


@override_settings(SOURCE_CACHE_SECONDS=TTL)
def test_a_key_rotated_elsewhere_is_refused_once_the_entry_expires(client, source):
    assert _track(client, source.write_key, "m-1") == 200
    # Another process rotates the key: no signal reaches this one.
    new_key = "msk_rotated-elsewhere"
    Source.objects.filter(pk=source.source.pk).update(write_key_hash=hash_write_key(new_key))
    assert _track(client, source.write_key, "m-2") == 200  # still cached
    assert _status(new_key) == 200  # a key not in the cache is looked up at once
    time.sleep(TTL + 0.1)
    assert _track(client, source.write_key, "m-3") == 401
    assert _status(source.write_key) == 401
    assert set(Event.objects.values_list("message_id", flat=True)) == {"m-1", "m-2"}


@override_settings(SOURCE_CACHE_SECONDS=TTL)
def test_a_source_disabled_elsewhere_is_refused_once_the_entry_expires(source):
    assert _status(source.write_key) == 200
    Source.objects.filter(pk=source.source.pk).update(enabled=False)
    assert _status(source.write_key) == 200
    time.sleep(TTL + 0.1)
    assert _status(source.write_key) == 403
    # Disabled sources are cached too, and enabling one in this process shows at once.
    enabled = Source.objects.get(pk=source.source.pk)
    enabled.enabled = True
    enabled.save()
    assert _status(source.write_key) == 200


@override_settings(SOURCE_CACHE_SECONDS=3600)
def test_a_source_disabled_in_this_process_is_refused_at_once(client, source):
    assert _track(client, source.write_key, "m-1") == 200
    source.source.enabled = False
    source.source.save()
    assert _track(client, source.write_key, "m-2") == 403
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m-1"]


@override_settings(SOURCE_CACHE_SECONDS=3600)
def test_a_key_rotated_in_this_process_is_refused_at_once(client, source):
    assert _track(client, source.write_key, "m-1") == 200
    new_key = source_rotate_write_key(source=source.source, grace=timedelta(0))
    assert _track(client, source.write_key, "m-2") == 401
    assert _track(client, new_key, "m-3") == 200


@override_settings(SOURCE_CACHE_SECONDS=3600)
def test_a_source_deleted_in_this_process_is_refused_at_once(source):
    assert _status(source.write_key) == 200
    Source.objects.get(pk=source.source.pk).delete()
    assert _status(source.write_key) == 401


@override_settings(SOURCE_CACHE_SECONDS=0)
def test_no_cache_when_the_setting_is_zero(source):
    assert _status(source.write_key) == 200
    Source.objects.filter(pk=source.source.pk).update(enabled=False)
    assert _status(source.write_key) == 403


@override_settings(SOURCE_CACHE_SECONDS=3600)
def test_each_request_gets_its_own_source_instance(source):
    first = source_for_write_key(source.write_key)
    first.name = "changed by a caller"
    second = source_for_write_key(source.write_key)
    assert second is not first
    assert second.name == "main"
    assert second.pk == source.source.pk


def test_disabling_in_the_admin_takes_effect_at_once(client, admin_client, source) -> None:
    from django.urls import reverse

    body = {"event": "Email Opened", "userId": "1", "properties": {"delivery_id": "d"}}
    auth = {"HTTP_AUTHORIZATION": basic_auth(source.write_key)}
    assert (
        client.post("/v1/track", body, content_type="application/json", **auth).status_code == 200
    )
    admin_client.post(
        reverse("admin:metrics_source_source_changelist"),
        {"action": "disable", "_selected_action": [source.source.pk]},
    )
    assert (
        client.post("/v1/track", body, content_type="application/json", **auth).status_code == 403
    )
