"""Secrets at rest: what PostgreSQL holds is ciphertext, what the code reads is the secret,
keys rotate without losing a secret, and the migration that encrypted existing rows works
both ways on data."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.signing import new_secret
from metrics_source.models import Source
from metrics_source.runtime.encryption import decrypt


def stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE id = %s', [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def secrets_in_use(db, make_source, settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True
    source = make_source("at-rest", secret="cio-signing-secret-1").source
    previous = new_secret()
    destination = destination_create(
        name="at-rest", kind="webhook", url="http://127.0.0.1:9/x", previous_secret=previous
    )
    return source, destination, previous


def test_the_database_holds_ciphertext_and_the_code_reads_the_secret(secrets_in_use):
    source, destination, previous = secrets_in_use
    raw = stored("metrics_source_source", "webhook_signing_secret", source.pk)
    assert raw.startswith("fernet:") and "cio-signing-secret-1" not in raw
    for column, secret in (("secret", destination.secret), ("previous_secret", previous)):
        raw = stored("metrics_source_destination", column, destination.pk)
        assert raw.startswith("fernet:") and secret not in raw
    assert Source.objects.get(pk=source.pk).webhook_signing_secret == "cio-signing-secret-1"
    reloaded = Destination.objects.get(pk=destination.pk)
    assert (reloaded.secret, reloaded.previous_secret) == (destination.secret, previous)
    # An empty secret stays empty (and so stays queryable as "none").
    assert Source.objects.filter(webhook_signing_secret="").count() == 0


def test_keys_rotate_without_losing_a_secret(db, make_source, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [old_key]
    source = make_source("rotating", secret="cio-signing-secret-2").source
    under_old = stored("metrics_source_source", "webhook_signing_secret", source.pk)
    # Without the key that wrote it, a secret cannot be read: an error that says what to do,
    # never a wrong value.
    settings.SECRETS_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(ImproperlyConfigured, match="secrets_reencrypt"):
        _ = Source.objects.get(pk=source.pk).webhook_signing_secret
    # The new key in front, the old one behind: readable, then re-encrypted.
    settings.SECRETS_ENCRYPTION_KEYS = [new_key, old_key]
    assert Source.objects.get(pk=source.pk).webhook_signing_secret == "cio-signing-secret-2"
    out = io.StringIO()
    call_command("secrets_reencrypt", stdout=out)
    assert "re-encrypted 1 stored secret(s)" in out.getvalue()
    assert stored("metrics_source_source", "webhook_signing_secret", source.pk) != under_old
    # The old key can go.
    settings.SECRETS_ENCRYPTION_KEYS = [new_key]
    assert Source.objects.get(pk=source.pk).webhook_signing_secret == "cio-signing-secret-2"


def test_a_bad_key_is_a_clear_configuration_error(db, settings):
    settings.SECRETS_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    from metrics_source.runtime.encryption import encrypt

    with pytest.raises(ImproperlyConfigured, match="Fernet keys"):
        encrypt("x")


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_its_reverse_decrypts_them():
    try:
        _encrypt_and_decrypt_through_the_migration()
    finally:  # the schema back at the latest migration for the tests that follow, pass or fail
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _encrypt_and_decrypt_through_the_migration() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("metrics_source", "0010_roles_and_audit")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_source_source (name, slug, write_key_hash, write_key_hint,"
            " webhook_signing_secret, enabled, created_at, updated_at)"
            " VALUES ('old', 'old', 'h', 'x', 'plain-secret', true, now(), now()) RETURNING id"
        )
        source_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO metrics_source_source (name, slug, write_key_hash, write_key_hint,"
            " webhook_signing_secret, enabled, created_at, updated_at)"
            " VALUES ('none', 'none', 'h2', 'y', '', true, now(), now()) RETURNING id"
        )
        empty_id = cursor.fetchone()[0]
    executor = MigrationExecutor(connection)
    executor.migrate([("metrics_source", "0011_encrypted_secrets")])
    raw = stored("metrics_source_source", "webhook_signing_secret", source_id)
    assert raw.startswith("fernet:") and "plain-secret" not in raw
    assert stored("metrics_source_source", "webhook_signing_secret", empty_id) == ""
    # The table as 0011 left it (today's model has later columns): the value decrypts.
    assert decrypt(raw) == "plain-secret"
    executor = MigrationExecutor(connection)
    executor.migrate([("metrics_source", "0010_roles_and_audit")])
    assert stored("metrics_source_source", "webhook_signing_secret", source_id) == "plain-secret"
