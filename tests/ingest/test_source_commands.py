"""Scripted setup of sources: source_create, source_list and source_rotate_key, run as a
script runs them (call_command, and manage.py in a process of its own). The key they print
must authenticate a real tracking request; no listing may show a secret."""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
from django.core.management import CommandError
from django.test import Client

from metrics_source.models import Source
from tests.command_support import manage, run
from tests.conftest import basic_auth, cio_signature_headers

WEBHOOK_SECRET = "cio-webhook-secret-from-stdin"


def track_status(write_key: str, message_id: str) -> int:
    body = {"event": "Email Opened", "userId": "42", "messageId": message_id}
    response = Client().post(
        "/v1/track",
        orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    return response.status_code


def webhook_status(slug: str, secret: str) -> int:
    body = orjson.dumps(
        {
            "event_id": "01HCMD000000000000000000001",
            "object_type": "email",
            "metric": "opened",
            "timestamp": 1700000000,
            "data": {"delivery_id": "d-1", "identifiers": {"id": "7"}},
        }
    )
    response = Client().post(
        f"/webhooks/customerio/{slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(secret, body),
    )
    return response.status_code


def secret_values(source: Source) -> list[str]:
    return [source.write_key_hash, source.webhook_signing_secret]


@pytest.mark.django_db
def test_source_create_prints_a_working_write_key_once_and_stores_only_its_hash():
    document = json.loads(
        run(
            "source_create", "Workspace A", "--webhook-secret-stdin", "--json", stdin=WEBHOOK_SECRET
        )
    )
    source = Source.objects.get(slug="workspace-a")
    write_key = document["write_key"]
    assert document["id"] == source.pk and document["name"] == "Workspace A"
    assert document["has_webhook_secret"] is True
    assert document["webhook_path"] == "/webhooks/customerio/workspace-a"
    assert source.write_key_hash == hashlib.sha256(write_key.encode()).hexdigest()
    assert source.webhook_signing_secret == WEBHOOK_SECRET
    for field in Source._meta.fields:
        assert write_key not in str(getattr(source, field.attname)), field.name
    assert track_status(write_key, "cmd-created-1") == 200
    assert webhook_status(source.slug, WEBHOOK_SECRET) == 200

    text = run("source_create", "Workspace B", "--slug", "wb")
    (line,) = [line for line in text.splitlines() if line.startswith("Write key: ")]
    key_b = line.removeprefix("Write key: ")
    assert text.count(key_b) == 1
    assert "refused until a signing secret is set" in text
    assert track_status(key_b, "cmd-created-2") == 200
    assert not Source.objects.get(slug="wb").webhook_signing_secret


@pytest.mark.django_db
def test_the_webhook_secret_can_come_from_the_environment_or_the_command_line(monkeypatch):
    monkeypatch.setenv("CIO_SECRET", "from-the-environment")
    run("source_create", "Env", "--webhook-secret-env", "CIO_SECRET")
    run("source_create", "Argv", "--webhook-secret", "from-argv")
    assert Source.objects.get(name="Env").webhook_signing_secret == "from-the-environment"
    assert Source.objects.get(name="Argv").webhook_signing_secret == "from-argv"


@pytest.mark.django_db
def test_source_list_shows_no_secret(make_source):
    created = make_source("Listed", secret="listed-webhook-secret")
    make_source("Quiet", secret="")
    for args in (("source_list",), ("source_list", "--json")):
        output = run(*args)
        assert created.write_key not in output
        for secret in secret_values(created.source):
            assert secret not in output
        assert f"msk_…{created.source.write_key_hint}" in output
    rows = json.loads(run("source_list", "--json"))
    assert [(row["slug"], row["has_webhook_secret"]) for row in rows] == [
        ("listed", True),
        ("quiet", False),
    ]


@pytest.mark.django_db
def test_source_rotate_key_prints_a_new_key_and_the_old_one_stops_without_grace(make_source):
    created = make_source("Rotated")
    assert track_status(created.write_key, "rotate-1") == 200
    document = json.loads(run("source_rotate_key", "rotated", "--grace-hours", "0", "--json"))
    new_key = document["write_key"]
    assert new_key != created.write_key and document["write_key_hint"] == new_key[-4:]
    assert document["previous_write_key_valid_until"] is None
    assert track_status(created.write_key, "rotate-2") == 401
    assert track_status(new_key, "rotate-3") == 200
    # By id too, with the default grace: the key it replaced keeps working.
    text = run("source_rotate_key", str(created.source.pk))
    newest = text.splitlines()[0].rpartition(": ")[2]
    assert "stays valid until" in text and f"source_end_grace {created.source.slug}" in text
    assert track_status(new_key, "rotate-4") == 200
    assert track_status(newest, "rotate-5") == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("source_create", "Taken"), "", "name: Source with this Name already exists"),
        (("source_create", "Other", "--slug", "taken"), "", "slug: Source with this Slug"),
        (("source_create", "Bad slug", "--slug", "no spaces"), "", "slug: Enter a valid"),
        (("source_create", "Empty", "--webhook-secret-stdin"), "", "no secret on its first"),
        (("source_create", "Unset", "--webhook-secret-env", "MS_UNSET_VARIABLE"), "", "not set"),
        (("source_rotate_key", "nobody"), None, "no source with the slug or id 'nobody'"),
    ],
)
def test_bad_input_is_refused_with_one_clear_line(make_source, args, stdin, message):
    make_source("Taken")
    with pytest.raises(CommandError) as refused:
        run(*args, stdin=stdin)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert Source.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_manage_py_prints_one_json_document_and_exits_non_zero_on_bad_input():
    done = manage("source_create", "Scripted", "--webhook-secret-stdin", "--json", stdin="s3c\n")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # nothing else on stdout
    assert track_status(document["write_key"], "scripted-1") == 200
    assert Source.objects.get(slug="scripted").webhook_signing_secret == "s3c"

    listed = manage("source_list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["slug"] for row in json.loads(listed.stdout)] == ["scripted"]
    assert document["write_key"] not in listed.stdout + listed.stderr
    assert "s3c" not in listed.stdout

    again = manage("source_create", "Scripted", "--json")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        "CommandError: source not created: name: Source with this Name already exists; "
        "slug: Source with this Slug already exists"
    ]
