"""Overlapping secrets: a rotated write key and a replaced webhook signing secret stay valid
for the grace period the operator chose, then stop (with the same 401 as any unknown key);
the grace period can be ended early from the admin and from the command line; only one
previous key or secret is ever valid; the previous secret is stored encrypted."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import orjson
import pytest
from django.core.management import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from metrics_source.access.models import AuditAction, AuditEntry
from metrics_source.ingest.sources import (
    GraceInProgress,
    source_replace_webhook_secret,
    source_rotate_write_key,
)
from metrics_source.models import Source
from tests.command_support import run
from tests.conftest import basic_auth
from tests.ingest.test_admin import SOURCES, WRITE_KEY, change_form_data, webhook_status


def track(write_key: str, message_id: str):
    body = {"event": "Email Opened", "userId": "42", "messageId": message_id}
    return Client().post(
        "/v1/track",
        orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )


def track_status(write_key: str, message_id: str) -> int:
    return track(write_key, message_id).status_code


def rotate_in_admin(client: Client, source: Source, **extra: str):
    data = {"action": "rotate_write_key", "_selected_action": [source.pk], "index": "0", **extra}
    return client.post(SOURCES, data, follow=True)


# -- write keys -----------------------------------------------------------------------------


def test_the_old_key_works_during_its_grace_and_is_unknown_after_it(make_source):
    created = make_source("Grace")
    new_key = source_rotate_write_key(source=created.source, grace=timedelta(seconds=1.5))
    assert track_status(created.write_key, "grace-old-1") == 200
    assert track_status(new_key, "grace-new-1") == 200
    # Time passes; nothing is saved, so the per-process cache still holds the row: the
    # expiry is checked on every request, and a cached row does not stretch it.
    time.sleep(1.7)
    expired = track(created.write_key, "grace-old-2")
    unknown = track("msk_never-issued-key", "grace-unknown")
    assert expired.status_code == unknown.status_code == 401
    assert expired.content == unknown.content  # nothing tells an expired key from a wrong one
    assert track_status(new_key, "grace-new-2") == 200


def test_a_rotation_with_grace_during_a_grace_is_refused(make_source):
    """Rotating again would silently end the key the senders still use; with no grace it is
    the way out of a leak: every old key stops."""
    created = make_source("Twice")
    second = source_rotate_write_key(source=created.source)
    with pytest.raises(GraceInProgress, match="still valid until"):
        source_rotate_write_key(source=created.source)
    assert track_status(created.write_key, "twice-1") == 200
    assert track_status(second, "twice-2") == 200
    third = source_rotate_write_key(source=created.source, grace=timedelta(0))
    assert track_status(created.write_key, "twice-3") == 401
    assert track_status(second, "twice-4") == 401
    assert track_status(third, "twice-5") == 200


def test_the_admin_refuses_a_second_rotation_with_grace(admin_client, make_source):
    created = make_source("Admin twice")
    source_rotate_write_key(source=created.source)
    response = rotate_in_admin(admin_client, created.source, grace_hours="24")
    page = response.content.decode()
    assert "Not rotated" in page and "end that grace period first" in page
    assert not WRITE_KEY.findall(page)
    assert not AuditEntry.objects.filter(action=AuditAction.KEY_ROTATED).exists()
    assert track_status(created.write_key, "admin-twice") == 200


def test_no_grace_stops_the_old_key_at_once(make_source):
    created = make_source("No grace")
    new_key = source_rotate_write_key(source=created.source, grace=timedelta(0))
    assert track_status(created.write_key, "none-1") == 401
    assert track_status(new_key, "none-2") == 200
    created.source.refresh_from_db()
    assert created.source.previous_write_key_hash is None


def test_a_grace_period_is_between_zero_and_thirty_days(make_source):
    source = make_source("Bounds").source
    for grace in (timedelta(days=31), timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="between 0 and 30 days"):
            source_rotate_write_key(source=source, grace=grace)


def test_the_admin_rotates_with_the_chosen_grace_and_shows_until_when(admin_client, make_source):
    created = make_source("Admin grace")
    page = admin_client.get(SOURCES).content.decode()
    assert 'name="grace_hours"' in page  # the choice sits in the action bar

    response = rotate_in_admin(admin_client, created.source, grace_hours="168")

    page = response.content.decode()
    [new_key] = WRITE_KEY.findall(page)
    created.source.refresh_from_db()
    until = created.source.previous_write_key_expires_at
    assert until is not None
    assert abs(until - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert f"msk_…{created.write_key[-4:]}" in page and "stays valid until" in page
    assert track_status(created.write_key, "admin-old") == 200
    assert track_status(new_key, "admin-new") == 200
    entry = AuditEntry.objects.get(action=AuditAction.KEY_ROTATED)
    assert entry.detail["grace_hours"] == 168
    assert entry.detail["previous_key_valid_until"] == until.isoformat()
    assert new_key not in json.dumps(entry.detail) and created.write_key not in str(entry.detail)

    change = admin_client.get(f"{SOURCES}{created.source.pk}/change/").content.decode()
    assert "Previous write key" in change and "still accepted until" in change


def test_the_admin_ends_a_grace_period_early(admin_client, make_source):
    created = make_source("End early")
    other = make_source("Untouched")
    source_rotate_write_key(source=created.source)
    other_new = source_rotate_write_key(source=other.source)
    assert track_status(created.write_key, "early-1") == 200

    response = admin_client.post(
        SOURCES,
        {"action": "end_write_key_grace", "_selected_action": [created.source.pk], "index": "0"},
        follow=True,
    )

    assert "stopped working for 1 source" in response.content.decode()
    assert track_status(created.write_key, "early-2") == 401
    assert track_status(other.write_key, "early-3") == 200  # only the selected source
    assert track_status(other_new, "early-4") == 200
    [entry] = AuditEntry.objects.filter(action=AuditAction.KEY_GRACE_ENDED)
    assert entry.object_id == str(created.source.pk)
    change = admin_client.get(f"{SOURCES}{created.source.pk}/change/").content.decode()
    assert "Previous write key" not in change


def test_no_grace_in_the_admin_stops_the_old_key(admin_client, make_source):
    created = make_source("Admin none")
    response = rotate_in_admin(admin_client, created.source, grace_hours="0")
    [new_key] = WRITE_KEY.findall(response.content.decode())
    assert track_status(created.write_key, "admin-none-1") == 401
    assert track_status(new_key, "admin-none-2") == 200


def test_a_grace_not_offered_rotates_nothing(admin_client, make_source):
    created = make_source("Admin odd")
    response = rotate_in_admin(admin_client, created.source, grace_hours="100000")
    assert not WRITE_KEY.findall(response.content.decode())
    created.source.refresh_from_db()
    assert created.source.write_key_hint == created.write_key[-4:]
    assert track_status(created.write_key, "admin-odd") == 200


@pytest.mark.django_db
def test_the_commands_rotate_with_grace_list_it_and_end_it(make_source):
    created = make_source("Cli")
    document = json.loads(run("source_rotate_key", "cli", "--grace-hours", "2", "--json"))
    new_key = document["write_key"]
    until = timezone.datetime.fromisoformat(document["previous_write_key_valid_until"])
    assert abs(until - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert track_status(created.write_key, "cli-1") == 200

    [row] = json.loads(run("source_list", "--json"))
    assert row["previous_write_key_valid_until"] == document["previous_write_key_valid_until"]
    assert "previous key valid until" in run("source_list")

    assert "no longer accepted" in run("source_end_grace", "cli")
    assert track_status(created.write_key, "cli-2") == 401
    assert track_status(new_key, "cli-3") == 200
    assert "had no previous key or secret" in run("source_end_grace", "cli")

    with pytest.raises(CommandError, match="--grace-hours is between 0 and 720"):
        run("source_rotate_key", "cli", "--grace-hours", "721")
    run("source_rotate_key", "cli")
    with pytest.raises(CommandError, match="source_end_grace cli"):
        run("source_rotate_key", "cli")


# -- webhook signing secrets ---------------------------------------------------------------


def replace_secret_in_admin(client: Client, source: Source, new_secret: str, **extra: str):
    url = f"{SOURCES}{source.pk}/change/"
    data = change_form_data(source, webhook_signing_secret=new_secret, **extra)
    return client.post(url, data, follow=True)


def test_both_secrets_verify_while_customerio_rotates(admin_client, make_source):
    created = make_source("Rotating workspace", secret="old-cio-secret")
    response = replace_secret_in_admin(
        admin_client, created.source, "new-cio-secret", webhook_secret_grace_hours="24"
    )
    assert response.status_code == 200

    slug = created.source.slug
    assert webhook_status(slug, "old-cio-secret", "01HOVERLAP0000000000000001") == 200
    assert webhook_status(slug, "new-cio-secret", "01HOVERLAP0000000000000002") == 200
    assert webhook_status(slug, "never-a-secret", "01HOVERLAP0000000000000003") == 401
    change = admin_client.get(f"{SOURCES}{created.source.pk}/change/").content.decode()
    assert "Previous signing secret" in change and "still accepted until" in change
    assert "old-cio-secret" not in change and "new-cio-secret" not in change
    # Stored encrypted, like the current one.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT previous_webhook_signing_secret FROM metrics_source_source WHERE id = %s",
            [created.source.pk],
        )
        [(stored,)] = cursor.fetchall()
    assert stored.startswith("fernet:") and "old-cio-secret" not in stored

    # Ended early: only the new secret verifies.
    replace_secret_in_admin(admin_client, created.source, "", end_webhook_secret_grace="on")
    assert webhook_status(slug, "old-cio-secret", "01HOVERLAP0000000000000004") == 401
    assert webhook_status(slug, "new-cio-secret", "01HOVERLAP0000000000000005") == 200


def test_replacing_the_secret_again_during_its_grace_needs_the_previous_one_ended(
    admin_client, make_source
):
    created = make_source("Replaced twice", secret="first-secret")
    replace_secret_in_admin(admin_client, created.source, "second-secret")
    refused = replace_secret_in_admin(admin_client, created.source, "third-secret")
    assert "The previous secret is still accepted" in refused.content.decode()
    slug = created.source.slug
    assert webhook_status(slug, "first-secret", "01HOVERLAP0000000000000040") == 200
    assert webhook_status(slug, "third-secret", "01HOVERLAP0000000000000041") == 401
    replace_secret_in_admin(
        admin_client, created.source, "third-secret", end_webhook_secret_grace="on"
    )
    assert webhook_status(slug, "first-secret", "01HOVERLAP0000000000000042") == 401
    assert webhook_status(slug, "second-secret", "01HOVERLAP0000000000000043") == 200
    assert webhook_status(slug, "third-secret", "01HOVERLAP0000000000000044") == 200


def test_a_removed_secret_verifies_nothing_and_takes_its_predecessor(admin_client, make_source):
    created = make_source("Removed", secret="first-secret")
    replace_secret_in_admin(admin_client, created.source, "second-secret")
    response = replace_secret_in_admin(
        admin_client, created.source, "", clear_webhook_signing_secret="on"
    )
    assert response.status_code == 200
    slug = created.source.slug
    assert webhook_status(slug, "first-secret", "01HOVERLAP0000000000000010") == 401
    assert webhook_status(slug, "second-secret", "01HOVERLAP0000000000000011") == 401


def test_the_previous_secret_stops_when_its_grace_ends(make_source):
    created = make_source("Secret grace", secret="old-secret")
    source = created.source
    source_replace_webhook_secret(
        source=source, new_secret="new-secret", grace=timedelta(seconds=1.5)
    )
    source.save()
    assert webhook_status(source.slug, "old-secret", "01HOVERLAP0000000000000020") == 200
    time.sleep(1.7)
    assert webhook_status(source.slug, "old-secret", "01HOVERLAP0000000000000021") == 401
    assert webhook_status(source.slug, "new-secret", "01HOVERLAP0000000000000022") == 200


def test_no_grace_for_the_secret_replaces_it_at_once(admin_client, make_source):
    created = make_source("Secret none", secret="old-secret")
    replace_secret_in_admin(
        admin_client, created.source, "new-secret", webhook_secret_grace_hours="0"
    )
    slug = created.source.slug
    assert webhook_status(slug, "old-secret", "01HOVERLAP0000000000000030") == 401
    assert webhook_status(slug, "new-secret", "01HOVERLAP0000000000000031") == 200
    assert (
        "end_webhook_secret_grace"
        not in admin_client.get(f"{SOURCES}{created.source.pk}/change/").content.decode()
    )
