"""Customer.io reporting webhooks (/webhooks/customerio/<slug>) through Django's test client,
signed as Customer.io signs them, against the real PostgreSQL test database."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime

import orjson
import pytest

from metrics_source.models import Event, Origin
from tests.conftest import cio_signature_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(both_routes_client):
    """Every test here runs through the full Django stack and through the fast path."""
    return both_routes_client


# Customer.io's official examples, byte for byte as published.
OFFICIAL_SUBSCRIBED = b"""{"metric":"subscribed","event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"customer","timestamp":1613063089,
 "data":{"customer_id":"0200000001","email_address":"test@example.com",
         "identifiers":{"id":"42","email":"test@example.com","cio_id":"d9c106000001"}}}"""  # noqa: E501
OFFICIAL_EMAIL_SENT = b"""{"metric":"sent","event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email","timestamp":1613063089,
 "data":{"action_id":42,"broadcast_id":9,"customer_id":"0200000001","delivery_id":"RPILAgUBcRhIBqSfeiIwdIYJKxTY",
         "identifiers":{"id":"42","email":"test@example.com","cio_id":"d9c106000001"},"recipient":"test@example.com"}}"""  # noqa: E501
OFFICIAL_SMS_SENT = b"""{"metric":"sent","event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"sms","timestamp":1613063089,
 "data":{"action_id":42,"broadcast_id":9,"customer_id":"0200000001","delivery_id":"RPILAgUBcRhIBqSfeiIwdIYJKxTY",
         "identifiers":{"id":"42","email":"test@example.com","cio_id":"d9c106000001"},"recipient":"+15551234567"}}"""  # noqa: E501

EVENT_ID = "01E4C4CT6YDC7Y5M7FE1GWWPQJ"
HAPPENED_AT = datetime(2021, 2, 11, 17, 4, 49, tzinfo=UTC)  # 1613063089


def url(source) -> str:
    return f"/webhooks/customerio/{source.source.slug}"


def deliver(client, path, body: bytes, headers: dict, content_type="application/json"):
    return client.post(path, body, content_type=content_type, headers=headers)


def signed(client, source, body: bytes, *, secret=None, timestamp=None):
    headers = cio_signature_headers(secret or source.secret, body, timestamp)
    return deliver(client, url(source), body, headers)


def assert_refused(response, status, *words):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    message = response.json()["error"]
    for word in words:
        assert word.lower() in message.lower(), message
    assert not Event.objects.exists()


# --------------------------------------------------------------------------------------
# Accepted
# --------------------------------------------------------------------------------------


def test_official_email_sent_example_is_stored_mapped(client, source):
    sent_at = int(time.time())
    response = signed(client, source, OFFICIAL_EMAIL_SENT, timestamp=sent_at)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "success": True,
        "messageId": EVENT_ID,
        "event": "Email Sent",
        "duplicate": False,
    }
    row = Event.objects.get()
    assert (row.message_id, row.source_id, row.origin) == (
        EVENT_ID,
        source.source.pk,
        Origin.WEBHOOK,
    )
    assert (row.event, row.channel, row.metric, row.semantic) == (
        "Email Sent",
        "email",
        "sent",
        True,
    )
    assert (row.user_id, row.anonymous_id, row.email) == ("42", None, "test@example.com")
    assert row.delivery_id == "RPILAgUBcRhIBqSfeiIwdIYJKxTY"
    assert (row.broadcast_id, row.action_id, row.campaign_id) == (9, 42, None)
    assert row.timestamp == row.original_timestamp == HAPPENED_AT
    assert row.sent_at == datetime.fromtimestamp(sent_at, tz=UTC)
    assert row.properties == {
        "action_id": 42,
        "broadcast_id": 9,
        "customer_id": "0200000001",
        "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        "recipient": "test@example.com",
        "userId": "42",
    }
    assert row.context == {"traits": {"email": "test@example.com", "cio_id": "d9c106000001"}}
    assert row.raw == orjson.loads(OFFICIAL_EMAIL_SENT)


def test_official_subscribed_example_is_stored_mapped(client, source):
    response = signed(client, source, OFFICIAL_SUBSCRIBED)
    assert response.status_code == 200, response.content
    assert response.json()["event"] == "Subscribed"
    row = Event.objects.get()
    assert (row.event, row.channel, row.metric) == ("Subscribed", "subscription", "subscribed")
    assert (row.user_id, row.email, row.delivery_id) == ("42", "test@example.com", None)
    assert row.properties["email_address"] == "test@example.com"
    assert row.properties["object_type"] == "customer"
    assert row.properties["userId"] == "42"
    assert row.timestamp == HAPPENED_AT


def test_official_sms_sent_example_is_stored_mapped(client, source):
    response = signed(client, source, OFFICIAL_SMS_SENT)
    assert response.status_code == 200, response.content
    assert response.json()["event"] == "SMS Sent"
    row = Event.objects.get()
    assert (row.event, row.channel, row.metric) == ("SMS Sent", "sms", "sent")
    assert (row.user_id, row.email, row.broadcast_id) == ("42", "test@example.com", 9)
    assert row.properties["recipient"] == "+15551234567"


def test_redelivery_is_a_duplicate_with_one_row(client, source):
    first = signed(client, source, OFFICIAL_EMAIL_SENT)
    assert first.json()["duplicate"] is False
    # Customer.io retries with a fresh timestamp and signature.
    again = signed(client, source, OFFICIAL_EMAIL_SENT, timestamp=int(time.time()) - 5)
    assert again.status_code == 200, again.content
    assert again.json() == {
        "success": True,
        "messageId": EVENT_ID,
        "event": "Email Sent",
        "duplicate": True,
    }
    assert Event.objects.count() == 1


def test_timestamp_inside_a_configured_tolerance_is_accepted(client, source, settings):
    settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 600
    response = signed(client, source, OFFICIAL_EMAIL_SENT, timestamp=int(time.time()) - 300)
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 1


def test_each_source_verifies_with_its_own_secret(client, make_source):
    first, second = make_source("a", secret="secret-a"), make_source("b", secret="secret-b")
    ok = deliver(
        client,
        url(second),
        OFFICIAL_EMAIL_SENT,
        cio_signature_headers("secret-b", OFFICIAL_EMAIL_SENT),
    )
    assert ok.status_code == 200, ok.content
    crossed = deliver(
        client, url(first), OFFICIAL_SMS_SENT, cio_signature_headers("secret-b", OFFICIAL_SMS_SENT)
    )
    assert crossed.status_code == 401
    assert Event.objects.get().source_id == second.source.pk


# --------------------------------------------------------------------------------------
# Refused: authentication
# --------------------------------------------------------------------------------------


def test_wrong_secret_is_401(client, source):
    response = signed(client, source, OFFICIAL_EMAIL_SENT, secret="not-the-secret")
    assert_refused(response, 401, "X-CIO-Signature")


@pytest.mark.parametrize("direction", [-1, 1], ids=["stale", "future"])
def test_timestamp_beyond_tolerance_is_401(client, source, settings, direction):
    settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 60
    timestamp = int(time.time()) + direction * 600
    response = signed(client, source, OFFICIAL_EMAIL_SENT, timestamp=timestamp)
    assert_refused(response, 401, "X-CIO-Timestamp", "60 s")


def test_tampered_body_is_401(client, source):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    tampered = OFFICIAL_EMAIL_SENT.replace(b'"broadcast_id":9', b'"broadcast_id":8')
    assert tampered != OFFICIAL_EMAIL_SENT
    assert_refused(deliver(client, url(source), tampered, headers), 401, "X-CIO-Signature")


def test_signature_of_another_timestamp_is_401(client, source):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    headers["X-CIO-Timestamp"] = str(int(headers["X-CIO-Timestamp"]) - 1)
    assert_refused(deliver(client, url(source), OFFICIAL_EMAIL_SENT, headers), 401, "Signature")


@pytest.mark.parametrize(
    "drop", [["X-CIO-Timestamp"], ["X-CIO-Signature"], ["X-CIO-Timestamp", "X-CIO-Signature"]]
)
def test_missing_signature_headers_are_401(client, source, drop):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    for name in drop:
        del headers[name]
    assert_refused(deliver(client, url(source), OFFICIAL_EMAIL_SENT, headers), 401, "missing")


@pytest.mark.parametrize(
    ("timestamp", "signature", "words"),
    [
        ("yesterday", None, ["unix seconds"]),
        ("1" + "0" * 400, None, ["unix seconds"]),  # cannot be compared with the clock
        ("1_613_063_089", None, ["unix seconds"]),
        (None, "\u00e9" * 64, ["X-CIO-Signature"]),  # not ASCII: a clean 401, not a crash
        (None, "sha256=abc", ["X-CIO-Signature"]),
    ],
)
def test_garbled_signature_headers_are_401(client, source, timestamp, signature, words):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    if timestamp is not None:
        headers["X-CIO-Timestamp"] = timestamp
    if signature is not None:
        headers["X-CIO-Signature"] = signature
    assert_refused(deliver(client, url(source), OFFICIAL_EMAIL_SENT, headers), 401, *words)


def test_signature_is_case_insensitive_hex_and_timestamp_signed_as_sent(client, source):
    timestamp = f"0{int(time.time())}"  # signed with the leading zero the sender wrote
    digest = hmac.new(
        source.secret.encode(), f"v0:{timestamp}:".encode() + OFFICIAL_EMAIL_SENT, hashlib.sha256
    ).hexdigest()
    headers = {"X-CIO-Timestamp": timestamp, "X-CIO-Signature": digest.upper()}
    response = deliver(client, url(source), OFFICIAL_EMAIL_SENT, headers)
    assert response.status_code == 200, response.content


NOT_MATCHING = "X-CIO-Signature does not match"


@pytest.mark.parametrize("slug", ["no-such-source", "a%00b", "x" * 300, "%C3%A9t%C3%A9"])
def test_unknown_slug_is_401(client, source, slug):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    response = deliver(client, f"/webhooks/customerio/{slug}", OFFICIAL_EMAIL_SENT, headers)
    assert_refused(response, 401, NOT_MATCHING)


def test_disabled_source_is_401_like_a_wrong_signature(client, make_source):
    disabled = make_source("off", enabled=False)
    assert_refused(signed(client, disabled, OFFICIAL_EMAIL_SENT), 401, NOT_MATCHING)


def test_source_without_secret_is_401_like_a_wrong_signature(client, make_source):
    unsigned = make_source("no-secret", secret="")
    headers = cio_signature_headers("", OFFICIAL_EMAIL_SENT)  # even a "matching" empty key
    response = deliver(client, url(unsigned), OFFICIAL_EMAIL_SENT, headers)
    assert_refused(response, 401, NOT_MATCHING)


def test_slugs_cannot_be_told_apart_from_outside(client, source, make_source, caplog):
    """Unknown, disabled, secretless and wrongly signed: one status, one body; the log says
    which it was."""
    disabled = make_source("off", enabled=False)
    unsigned = make_source("bare", secret="")
    wrong = cio_signature_headers("not-the-secret", OFFICIAL_EMAIL_SENT)
    answers = {}
    with caplog.at_level(logging.WARNING, logger="metrics_source.ingest"):
        for name, path in {
            "unknown": "/webhooks/customerio/no-such-source",
            "disabled": url(disabled),
            "no secret": url(unsigned),
            "wrong signature": url(source),
        }.items():
            response = deliver(client, path, OFFICIAL_EMAIL_SENT, wrong)
            answers[name] = (response.status_code, response.content)
    assert len(set(answers.values())) == 1, answers
    assert answers["unknown"][0] == 401
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "no source has this slug" in logged and "is disabled" in logged
    assert "no webhook signing secret" in logged
    assert "not-the-secret" not in logged


# --------------------------------------------------------------------------------------
# Refused: bad payloads (correctly signed)
# --------------------------------------------------------------------------------------


def _payload(**overrides):
    payload = orjson.loads(OFFICIAL_EMAIL_SENT)
    payload.update(overrides)
    return orjson.dumps({k: v for k, v in payload.items() if v is not None})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"metric": "sent", "event_id": ', ["malformed JSON"]),
        (b"", ["empty"]),
        (b"[1, 2]", ["object"]),
        (_payload(metric="teleported"), ["unknown object_type/metric", "'email'/'teleported'"]),
        (_payload(object_type="fax"), ["unknown object_type/metric", "'fax'/'sent'"]),
        (_payload(event_id=None), ["event_id"]),
        (_payload(event_id="   "), ["event_id"]),
        (_payload(timestamp="2021-02-11"), ["timestamp"]),
        (_payload(timestamp=1e20), ["timestamp"]),
        (_payload(data="nope"), ["data"]),
    ],
)
def test_bad_payloads_are_400_naming_the_problem(client, source, body, words):
    assert_refused(signed(client, source, body), 400, *words)


def test_wrong_content_type_is_415(client, source):
    headers = cio_signature_headers(source.secret, OFFICIAL_EMAIL_SENT)
    response = deliver(client, url(source), OFFICIAL_EMAIL_SENT, headers, "text/plain")
    assert_refused(response, 415, "Content-Type")


@pytest.mark.parametrize(
    ("content_type", "encoding", "body"),
    [
        ("text/plain", "", OFFICIAL_EMAIL_SENT),
        ("application/json", "br", OFFICIAL_EMAIL_SENT),
        # Two megabytes of zeros in 2 KB: never decompressed for a sender that did not sign it.
        ("application/json", "gzip", gzip.compress(b"0" * (2 * 1024 * 1024))),
        ("application/json", "", b"{not json"),
    ],
)
def test_the_signature_is_checked_before_anything_about_the_content(
    client, source, content_type, encoding, body
):
    headers = cio_signature_headers("not-the-secret", body)
    if encoding:
        headers["Content-Encoding"] = encoding
    assert_refused(deliver(client, url(source), body, headers, content_type), 401, "signature")


def test_body_over_the_webhook_limit_is_413(client, source):
    body = _payload(data={"delivery_id": "d", "content": "x" * (1024 * 1024)})
    assert_refused(signed(client, source, body), 413, "larger than")
