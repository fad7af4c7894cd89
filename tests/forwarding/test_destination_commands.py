"""Scripted setup of destinations: destination_create and destination_list, run as a script
runs them. The printed signing secret must verify a real forwarded request at a receiver on
loopback; bad input must end in one clear line and a non-zero exit; no listing shows a
secret."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.management import CommandError

from metrics_source.forwarding.delivery import deliver_batch
from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.models import Delivery, DeliveryStatus, Destination
from metrics_source.forwarding.signing import new_secret
from tests.command_support import manage, run
from tests.forwarding_support import (
    receiver,
    store_events,
    verify_standard_webhook,
)


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


def forward_one(destination_id: int):
    """Store an event and send it as a worker does; returns what the receiver got."""
    store_events(1)
    destination_fanout(destination_id=destination_id)
    result = deliver_batch(Destination.objects.get(pk=destination_id), worker="test")
    assert result.claimed == 1
    assert Delivery.objects.get(destination_id=destination_id).status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_a_webhook_gets_a_signing_secret_printed_once_that_verifies_what_is_forwarded():
    with receiver() as target:
        document = json.loads(
            run(
                "destination_create",
                "crm",
                "--kind",
                "webhook",
                "--url",
                target.url + "/in",
                "--json",
            )
        )
        forward_one(document["id"])
    secret = document["signing_secret"]
    assert secret.startswith("whsec_") and Destination.objects.get().secret == secret
    (request,) = target.requests
    assert request.path == "/in"
    verify_standard_webhook(secret, request.headers, request.body)

    text = run("destination_create", "crm2", "--kind", "webhook", "--url", target.url)
    (line,) = [line for line in text.splitlines() if line.startswith("Signing secret: ")]
    printed = line.removeprefix("Signing secret: ")
    assert text.count(printed) == 1
    assert Destination.objects.get(name="crm2").secret == printed


@pytest.mark.django_db
def test_a_given_signing_secret_is_kept_and_not_printed():
    given = new_secret()
    text = run("destination_create", "own", "--kind", "webhook", "--url", "http://127.0.0.1:9/x",
               "--secret-stdin", stdin=given + "\n")  # fmt: skip
    assert given not in text and "Signing secret" not in text
    assert Destination.objects.get().secret == given


@pytest.mark.django_db
def test_a_segment_destination_takes_its_write_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "wk-from-env")
    with receiver() as target:
        document = json.loads(
            run(
                "destination_create",
                "seg",
                "--kind",
                "segment",
                "--url",
                target.url,
                "--secret-env",
                "SEGMENT_WRITE_KEY",
                "--batch-size",
                "2500",
                "--json",
            )
        )
        forward_one(document["id"])
    assert document["signing_secret"] is None and "wk-from-env" not in json.dumps(document)
    (request,) = target.requests
    assert request.path == "/v1/batch"
    expected = base64.b64encode(b"wk-from-env:").decode()
    assert request.headers["authorization"] == f"Basic {expected}"


@pytest.mark.django_db
def test_the_admin_forms_filters_and_settings_are_stored(make_source):
    source = make_source("Workspace").source
    run(
        "destination_create", "filtered", "--kind", "webhook", "--url", "http://127.0.0.1:9/x",
        "--channel", "email", "--channel", "push", "--event-name", "Email Opened",
        "--source", source.slug, "--campaign-id", "5", "--broadcast-id", "6",
        "--newsletter-id", "7", "--transactional-message-id", "8", "--batch-size", "50",
        "--timeout-seconds", "5", "--max-requests-per-second", "2.5",
        "--header", "X-Team: growth", "--backfill-from", "2024-01-01T00:00:00Z", "--disabled",
    )  # fmt: skip
    destination = Destination.objects.get()
    assert destination.channels == ["email", "push"]
    assert destination.event_names == ["Email Opened"]
    assert list(destination.sources.all()) == [source]
    assert (destination.campaign_ids, destination.broadcast_ids) == ([5], [6])
    assert (destination.newsletter_ids, destination.transactional_message_ids) == ([7], [8])
    assert (destination.batch_size, destination.timeout_seconds) == (50, 5.0)
    assert destination.max_requests_per_second == 2.5
    assert destination.extra_headers == {"X-Team": "growth"}
    assert destination.backfill_from.isoformat() == "2024-01-01T00:00:00+00:00"
    assert not destination.enabled and not destination.backfill_done


@pytest.mark.django_db
def test_destination_list_shows_settings_and_filters_but_no_secret(make_source):
    source = make_source("Listed").source
    hook = destination_create(
        name="hook", kind="webhook", url="https://127.0.0.1/in?token=qs-secret",
        previous_secret=new_secret(), extra_headers={"X-Api-Key": "header-secret"},
        channels=["email"], sources=(source,),
    )  # fmt: skip
    segment = destination_create(
        name="seg", kind="segment", url="http://127.0.0.1:9", secret="wk-9"
    )
    secrets = [hook.secret, hook.previous_secret, "qs-secret", "header-secret", segment.secret]
    for args in (("destination_list",), ("destination_list", "--json")):
        output = run(*args)
        for secret in secrets:
            assert secret not in output
    rows = json.loads(run("destination_list", "--json"))
    assert [row["name"] for row in rows] == ["hook", "seg"]
    assert rows[0]["url"] == "https://127.0.0.1/in?…"
    assert rows[0]["has_secret"] and rows[0]["has_previous_secret"]
    assert rows[0]["extra_header_names"] == ["X-Api-Key"]
    assert rows[0]["filters"]["channels"] == ["email"]
    assert rows[0]["filters"]["sources"] == [source.slug]
    text = run("destination_list")
    assert "channels email; sources listed" in text and "all events" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "kafka"), "kind: unknown kind 'kafka'; one of: webhook, segment"),
        (("--kind", "webhook", "--batch-size", "0"), "batch_size: Between 1 and 1000 events"),
        (("--kind", "webhook", "--batch-size", "1001"), "batch_size: Between 1 and 1000"),
        (("--kind", "segment"), "secret: A Segment-compatible destination needs its write key"),
        (("--kind", "webhook", "--secret", "nope"), "secret: a signing secret starts with"),
        (("--kind", "webhook", "--channel", "emial"), "channels: Unknown channel(s): emial"),
        (("--kind", "webhook", "--source", "nowhere"), "no source with the slug or id 'nowhere'"),
        (("--kind", "webhook", "--header", "Authorization: x"), "extra_headers: Set by the"),
        (("--kind", "webhook", "--header", "no-colon"), "a header is 'Name: value'"),
        (("--kind", "webhook", "--backfill-from", "yesterday"), "not an ISO 8601 date"),
        (("--kind", "webhook", "--batch-size", "many"), "invalid int value: 'many'"),
    ],
)
def test_bad_input_is_refused_with_one_clear_line(args, message):
    destination_create(name="taken", kind="webhook", url="http://127.0.0.1:9/x")
    with pytest.raises(CommandError) as refused:
        run("destination_create", "new", "--url", "http://127.0.0.1:9/x", *args)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert Destination.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/x", "url: plain http:// is refused"),
        ("https://127.0.0.1/x", "loopback"),
    ],
)
def test_urls_inside_the_network_are_refused(settings, url, message):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(CommandError) as refused:
        run("destination_create", "inside", "--kind", "webhook", "--url", url)
    assert message in str(refused.value)
    assert not Destination.objects.exists()


@pytest.mark.django_db
def test_a_taken_name_is_refused():
    destination_create(name="taken", kind="webhook", url="http://127.0.0.1:9/x")
    with pytest.raises(CommandError, match="name: a destination named 'taken' already exists"):
        run("destination_create", "taken", "--kind", "webhook", "--url", "http://127.0.0.1:9/y")


@pytest.mark.django_db(transaction=True)
def test_manage_py_prints_one_json_document_and_exits_non_zero_on_bad_input():
    allow = {"FORWARDING_ALLOW_PRIVATE_NETWORKS": "1"}
    with receiver() as target:
        done = manage("destination_create", "scripted", "--kind", "webhook", "--url", target.url,
                      "--json", **allow)  # fmt: skip
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)  # nothing else on stdout
        forward_one(document["id"])
    (request,) = target.requests
    verify_standard_webhook(document["signing_secret"], request.headers, request.body)

    listed = manage("destination_list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["scripted"]
    assert document["signing_secret"] not in listed.stdout + listed.stderr

    refused = manage("destination_create", "other", "--kind", "kafka", "--url", target.url,
                     "--json", **allow)  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "CommandError: destination not created: kind: unknown kind 'kafka'; one of: webhook, "
        "segment"
    ]
    outside = manage("destination_create", "other", "--kind", "webhook", "--url",
                     "https://127.0.0.1/x", FORWARDING_ALLOW_PRIVATE_NETWORKS="0")  # fmt: skip
    assert outside.returncode == 1 and "Traceback" not in outside.stderr
    assert "url: 127.0.0.1 is a loopback" in outside.stderr
    assert Destination.objects.count() == 1
