"""The Segment-compatible tracking API (/v1/track, /v1/batch, ...) through Django's test client,
against the real PostgreSQL test database.

One module on purpose (over 400 lines): it is the API's contract, case by case (auth, bodies,
limits, answers), beside the one set of request helpers every case uses."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from metrics_source.ingest.sources import source_rotate_write_key
from metrics_source.models import Event, Origin
from tests.conftest import basic_auth, make_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(both_routes_client):
    """Every test here runs through the full Django stack and through the fast path."""
    return both_routes_client


NON_METRIC_TYPES = ("identify", "page", "screen", "group", "alias")


def post(client, path, body, *, auth=None, raw=False, **headers):
    """POST a JSON body (or raw bytes) with the given Authorization and extra headers."""
    if auth is not None:
        headers["Authorization"] = auth
    content_type = headers.pop("content_type", "application/json")
    data = body if raw else orjson.dumps(body)
    return client.post(path, data, content_type=content_type, headers=headers)


def assert_error(response, status, *words):
    """A JSON error body with the expected status whose message names the problem."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    message = response.json()["error"]
    for word in words:
        assert word.lower() in message.lower(), message


def track(event="Email Opened", message_id=None, **fields):
    call = {"type": "track", "event": event, "userId": "u-1", **fields}
    if message_id is not None:
        call["messageId"] = message_id
    return call


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------


def test_basic_auth_stores_for_the_source(client, source):
    response = post(
        client, "/v1/track", track(message_id="m-basic"), auth=basic_auth(source.write_key)
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "success": True,
        "received": 1,
        "stored": 1,
        "duplicates": 0,
        "ignored": {},
        "rejected": [],
    }
    row = Event.objects.get(message_id="m-basic")
    assert row.source_id == source.source.pk
    assert row.origin == Origin.TRACK


def test_bearer_auth_stores(client, source):
    response = post(
        client,
        "/v1/batch",
        {"batch": [track(message_id="m-bearer")]},
        auth=f"Bearer {source.write_key}",
    )
    assert response.status_code == 200, response.content
    assert Event.objects.get(message_id="m-bearer").source_id == source.source.pk


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_write_key_in_the_body_stores_and_is_not_kept(client, source, path):
    call = track(message_id="m-body")
    body = (
        {**call, "writeKey": source.write_key}
        if path == "/v1/track"
        else {"batch": [call], "writeKey": source.write_key}
    )
    response = post(client, path, body)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="m-body")
    assert row.source_id == source.source.pk
    assert source.write_key not in orjson.dumps([row.raw, row.properties, row.context]).decode()


def test_a_write_key_inside_each_call_of_a_batch_is_not_kept(client, source):
    """Some senders repeat the key in every call of a batch; the raw JSON drops it."""
    calls = [{**track(message_id=f"m-inner-{n}"), "writeKey": source.write_key} for n in (1, 2)]
    response = post(client, "/v1/batch", {"batch": calls, "writeKey": source.write_key})
    assert response.status_code == 200, response.content
    for row in Event.objects.filter(message_id__startswith="m-inner-"):
        assert "writeKey" not in row.raw
        assert source.write_key not in orjson.dumps([row.raw, row.properties, row.context]).decode()


@pytest.mark.parametrize(
    ("auth", "body_key", "words"),
    [
        (None, None, ["missing write key"]),
        ("Basic " + "bXNrX25vdC1hLWtleTo=", None, ["unknown write key"]),  # msk_not-a-key:
        ("Bearer msk_not-a-key", None, ["unknown write key"]),
        (None, "msk_not-a-key", ["unknown write key"]),
        (None, 12345, ["missing write key"]),
        ("Basic %%%not-base64", None, ["write key"]),
        ("Basic \u00e9\u00e9\u00e9", None, ["write key"]),  # not ASCII: still a clean 401
        ("Digest abc", None, ["write key"]),
        ("Bearer ", None, ["write key"]),
    ],
)
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch", "/v1/identify"])
def test_unknown_or_missing_key_is_401_and_stores_nothing(
    client, source, path, auth, body_key, words
):
    call = track(message_id="m-denied")
    body = call if path != "/v1/batch" else {"batch": [call]}
    if body_key is not None:
        body = {**body, "writeKey": body_key}
    assert_error(post(client, path, body, auth=auth), 401, *words)
    assert not Event.objects.exists()


@pytest.mark.parametrize("route", ["fast path", "full stack"])
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch", "/v1/identify", "/v1/alias"])
@pytest.mark.parametrize("data", [b"", b"  \n"], ids=["empty", "blank"])
def test_nothing_sent_without_a_header_is_401_not_a_malformed_body(source, path, data, route):
    # No Authorization header and no body: no credentials at all. With a key, an empty body
    # is still the body's fault (400, in test_malformed_json_is_400_and_stores_nothing).
    response = post(make_client(route), path, data, raw=True)
    assert_error(response, 401, "missing write key")
    response = post(make_client(route), path, b"{", raw=True)
    assert_error(response, 400, "malformed JSON")  # a body was sent: it may hold the key


def test_rotated_away_key_is_401_and_the_new_one_works(client, source):
    new_key = source_rotate_write_key(source=source.source, grace=timedelta(0))
    old = post(client, "/v1/track", track(message_id="m-old"), auth=basic_auth(source.write_key))
    assert_error(old, 401, "unknown write key")
    assert not Event.objects.exists()
    new = post(client, "/v1/track", track(message_id="m-new"), auth=basic_auth(new_key))
    assert new.status_code == 200, new.content
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m-new"]


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch", "/v1/page"])
def test_disabled_source_is_403_and_stores_nothing(client, make_source, path):
    disabled = make_source("off", enabled=False)
    body = track(message_id="m-off") if path != "/v1/batch" else {"batch": [track()]}
    assert_error(post(client, path, body, auth=basic_auth(disabled.write_key)), 403, "disabled")
    assert not Event.objects.exists()


# --------------------------------------------------------------------------------------
# Mapping into typed columns
# --------------------------------------------------------------------------------------


def test_track_stores_typed_columns(client, source):
    call = {
        "type": "track",
        "event": "Email Link Clicked",
        "userId": 42,  # SDKs send numbers too
        "anonymousId": "anon-7",
        "messageId": "m-typed",
        "timestamp": "2024-05-01T10:00:00.123Z",
        "context": {"traits": {"email": "ada@example.com"}},
        "properties": {
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "campaign_id": 17,
            "action_id": "88",
            "journey_id": "01HX0000000000000000000000",
            "href": "https://example.com/a",
        },
    }
    response = post(client, "/v1/track", call, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="m-typed")
    assert (row.event, row.channel, row.metric, row.semantic) == (
        "Email Link Clicked",
        "email",
        "clicked",
        True,
    )
    assert (row.user_id, row.anonymous_id, row.email) == ("42", "anon-7", "ada@example.com")
    assert row.delivery_id == "RPILAgUBcRhIBqSfeiIwdIYJKxTY"
    assert (row.campaign_id, row.action_id, row.journey_id) == (
        17,
        88,
        "01HX0000000000000000000000",
    )
    assert (row.broadcast_id, row.newsletter_id, row.transactional_message_id) == (None, None, None)
    stamp = datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert row.timestamp == stamp
    assert row.original_timestamp == stamp  # defaults to the timestamp the sender gave
    assert row.properties["href"] == "https://example.com/a"
    assert row.raw == call


def test_batch_stores_each_parent_kind_and_channel(client, source):
    calls = [
        track("Push Delivered", "m-broadcast", properties={"broadcast_id": 9, "trigger_id": 3}),
        track("SMS Sent", "m-newsletter", properties={"newsletter_id": 5, "content_id": 2}),
        track("Email Sent", "m-transactional", properties={"transactional_message_id": 11}),
        track("In-App Clicked", "m-inapp", anonymousId="x@example.com", userId=None),
        track("Subscribed", "m-sub", properties={"email_address": "y@example.com"}),
    ]
    response = post(client, "/v1/batch", {"batch": calls}, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 5
    rows = {row.message_id: row for row in Event.objects.all()}
    assert (rows["m-broadcast"].channel, rows["m-broadcast"].metric) == ("push", "delivered")
    assert (rows["m-broadcast"].broadcast_id, rows["m-broadcast"].trigger_id) == (9, 3)
    assert (rows["m-newsletter"].channel, rows["m-newsletter"].newsletter_id) == ("sms", 5)
    assert rows["m-newsletter"].content_id == 2
    assert rows["m-transactional"].transactional_message_id == 11
    assert (rows["m-inapp"].channel, rows["m-inapp"].metric) == ("in_app", "clicked")
    # An email as the anonymous id stands for the person's address.
    assert (rows["m-inapp"].user_id, rows["m-inapp"].email) == (None, "x@example.com")
    assert (rows["m-sub"].channel, rows["m-sub"].metric) == ("subscription", "subscribed")


def test_clock_skew_is_corrected_when_no_timestamp(client, source):
    # The device's clock is 10 minutes slow relative to... whatever: only the offset matters.
    original = datetime(2020, 1, 1, 12, 0, 0, tzinfo=UTC)
    sent = original + timedelta(minutes=10)
    call = track(
        message_id="m-skew", originalTimestamp=original.isoformat(), sentAt=sent.isoformat()
    )
    response = post(client, "/v1/track", call, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="m-skew")
    assert row.original_timestamp == original
    assert row.sent_at == sent
    # timestamp = receivedAt - (sentAt - originalTimestamp), kept to the millisecond.
    lag = row.received_at - row.timestamp - timedelta(minutes=10)
    assert timedelta(0) <= lag < timedelta(milliseconds=1)


def test_without_any_timestamp_the_received_time_is_used(client, source):
    response = post(
        client, "/v1/track", track(message_id="m-now"), auth=basic_auth(source.write_key)
    )
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="m-now")
    assert timedelta(0) <= row.received_at - row.timestamp < timedelta(milliseconds=1)
    assert row.original_timestamp == row.timestamp
    assert row.sent_at is None


def test_batch_sent_at_and_context_apply_to_every_event(client, source):
    original = datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)
    batch_sent = original + timedelta(seconds=30)
    own_sent = original + timedelta(seconds=90)
    body = {
        "batch": [
            track(
                message_id="m-ctx-own",
                originalTimestamp=original.isoformat(),
                context={
                    "traits": {"email": "own@example.com"},
                    "library": {"name": "own"},
                    "locale": "fr",
                },
            ),
            track(message_id="m-ctx-batch", originalTimestamp=original.isoformat()),
            track(
                message_id="m-ctx-sent",
                originalTimestamp=original.isoformat(),
                sentAt=own_sent.isoformat(),
            ),
        ],
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "traits": {"email": "batch@example.com", "plan": "pro"},
            "ip": "203.0.113.9",
        },
        "sentAt": batch_sent.isoformat().replace("+00:00", "Z"),
    }
    response = post(client, "/v1/batch", body, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    own = Event.objects.get(message_id="m-ctx-own")
    assert own.context == {
        "library": {"name": "own", "version": "2.4.0"},  # the event's own keys win
        "traits": {"email": "own@example.com", "plan": "pro"},
        "ip": "203.0.113.9",
        "locale": "fr",
    }
    assert own.email == "own@example.com"
    inherited = Event.objects.get(message_id="m-ctx-batch")
    assert inherited.context == body["context"]
    assert inherited.email == "batch@example.com"
    for row in (own, inherited):
        assert row.sent_at == batch_sent
        lag = row.received_at - row.timestamp - timedelta(seconds=30)
        assert timedelta(0) <= lag < timedelta(milliseconds=1)
    # An event's own sentAt wins over the batch's.
    own_sent_row = Event.objects.get(message_id="m-ctx-sent")
    assert own_sent_row.sent_at == own_sent
    lag = own_sent_row.received_at - own_sent_row.timestamp - timedelta(seconds=90)
    assert timedelta(0) <= lag < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("context", [1], ["context", "object"]),
        ("integrations", "all", ["integrations", "object"]),
        ("sentAt", "yesterday", ["sentAt"]),
    ],
)
def test_bad_batch_level_fields_are_400(client, source, field, value, words):
    body = {"batch": [track(message_id="m-x")], field: value}
    assert_error(post(client, "/v1/batch", body, auth=basic_auth(source.write_key)), 400, *words)
    assert not Event.objects.exists()


# --------------------------------------------------------------------------------------
# Bodies: gzip, JSON, content type, limits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_gzip_bodies_are_accepted(client, source, path):
    call = track(message_id="m-gzip")
    body = call if path == "/v1/track" else {"batch": [call]}
    response = post(
        client,
        path,
        gzip.compress(orjson.dumps(body)),
        raw=True,
        auth=basic_auth(source.write_key),
        Content_Encoding="gzip",
    )
    assert response.status_code == 200, response.content
    assert Event.objects.filter(message_id="m-gzip").count() == 1


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"this is not gzip at all", ["gzip"]),
        (gzip.compress(b'{"batch": []}', mtime=0)[:-12], ["gzip", "truncated"]),
    ],
)
def test_bad_gzip_is_400(client, source, data, words):
    response = post(
        client,
        "/v1/batch",
        data,
        raw=True,
        auth=basic_auth(source.write_key),
        Content_Encoding="gzip",
    )
    assert_error(response, 400, *words)


def test_gzip_with_the_key_in_the_body(client, source):
    body = {"batch": [track(message_id="m-gz-body")], "writeKey": source.write_key}
    response = post(
        client, "/v1/batch", gzip.compress(orjson.dumps(body)), raw=True, Content_Encoding="gzip"
    )
    assert response.status_code == 200, response.content
    assert Event.objects.filter(message_id="m-gz-body").exists()


@pytest.mark.parametrize(
    ("path", "data", "words"),
    [
        ("/v1/batch", b'{"batch": [', ["malformed JSON"]),
        ("/v1/track", b"{'event': 'Email Sent'}", ["malformed JSON"]),
        ("/v1/batch", b"", ["empty"]),
        ("/v1/batch", b"[]", ["batch"]),
        ("/v1/batch", b'{"batch": {"0": {}}}', ["batch"]),
        ("/v1/track", b"[1, 2]", ["object"]),
        ("/v1/identify", b'"just a string"', ["object"]),
        ("/v1/batch", b'{"batch": [], "x": "\\ud800"}', ["malformed JSON"]),
        ("/v1/batch", b'{"batch": [], "x": "\xff"}', ["malformed JSON"]),
    ],
)
def test_malformed_json_is_400_and_stores_nothing(client, source, path, data, words):
    response = post(client, path, data, raw=True, auth=basic_auth(source.write_key))
    assert_error(response, 400, *words)
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_wrong_content_type_is_415(client, source, path, content_type):
    body = orjson.dumps({"batch": [track()]} if path == "/v1/batch" else track())
    response = post(
        client, path, body, raw=True, auth=basic_auth(source.write_key), content_type=content_type
    )
    assert_error(response, 415, "Content-Type")
    assert not Event.objects.exists()


def test_json_content_type_variants_are_accepted(client, source):
    for index, content_type in enumerate(
        ["application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"]
    ):
        response = post(
            client,
            "/v1/track",
            track(message_id=f"m-ct-{index}"),
            auth=basic_auth(source.write_key),
            content_type=content_type,
        )
        assert response.status_code == 200, (content_type, response.content)
    assert Event.objects.count() == 3


def test_unsupported_content_encoding_is_415(client, source):
    response = post(
        client,
        "/v1/batch",
        {"batch": [track()]},
        auth=basic_auth(source.write_key),
        Content_Encoding="br",
    )
    assert_error(response, 415, "Content-Encoding")


def test_event_over_32_kb_is_rejected_alone(client, source):
    big = track(message_id="m-big", properties={"content": "x" * (32 * 1024)})
    body = {"batch": [track(message_id="m-small-1"), big, track(message_id="m-small-2")]}
    response = post(client, "/v1/batch", body, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["stored"], answer["success"]) == (2, False)
    assert answer["rejected"] == [
        {"index": 1, "messageId": "m-big", "error": "the event is larger than 32 KB"}
    ]
    assert set(Event.objects.values_list("message_id", flat=True)) == {"m-small-1", "m-small-2"}


def test_event_limit_counts_bytes_not_characters(client, source):
    # 17,000 "é" are 17,000 characters but 34,000 bytes of UTF-8: over the limit, as /v1/track
    # finds the same event; 16,000 (32,000 bytes with the envelope) are under it.
    over = track(message_id="m-wide", properties={"content": "é" * 17_000})
    under = track(message_id="m-narrow", properties={"content": "é" * 16_000})
    response = post(
        client, "/v1/batch", {"batch": [over, under]}, auth=basic_auth(source.write_key)
    )
    assert response.status_code == 200, response.content
    assert response.json()["rejected"] == [
        {"index": 0, "messageId": "m-wide", "error": "the event is larger than 32 KB"}
    ]
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m-narrow"]
    assert_error(post(client, "/v1/track", over, auth=basic_auth(source.write_key)), 413, "32 KB")


def test_track_body_over_32_kb_is_413(client, source):
    big = track(message_id="m-big", properties={"content": "x" * (32 * 1024)})
    assert_error(post(client, "/v1/track", big, auth=basic_auth(source.write_key)), 413, "32 KB")
    # The same limit holds when the key comes in the body.
    assert_error(post(client, "/v1/track", {**big, "writeKey": source.write_key}), 413, "32 KB")
    assert not Event.objects.exists()


def test_batch_body_over_500_kb_is_413(client, source):
    # 20 events of 26 KB: each under the event limit, together over the request limit.
    calls = [track(message_id=f"m-{i}", properties={"c": "x" * 26_000}) for i in range(20)]
    body = orjson.dumps({"batch": calls})
    assert len(body) > 500 * 1024
    response = post(client, "/v1/batch", body, raw=True, auth=basic_auth(source.write_key))
    assert_error(response, 413, "500 KB")
    assert not Event.objects.exists()


def test_gzip_body_decompressing_over_500_kb_is_413(client, source):
    calls = [track(message_id=f"m-{i}", properties={"c": "x" * 26_000}) for i in range(20)]
    compressed = gzip.compress(orjson.dumps({"batch": calls}))
    assert len(compressed) < 10 * 1024  # small on the wire, too large once inflated
    response = post(
        client,
        "/v1/batch",
        compressed,
        raw=True,
        auth=basic_auth(source.write_key),
        Content_Encoding="gzip",
    )
    assert_error(response, 413, "decompressed", "500 KB")
    assert not Event.objects.exists()


def test_batch_of_2500_is_stored_and_2501_is_413(client, source):
    calls = [{"event": "Email Sent", "userId": "u", "messageId": f"m-{i}"} for i in range(2501)]
    over = post(client, "/v1/batch", {"batch": calls}, auth=basic_auth(source.write_key))
    assert_error(over, 413, "2500")
    assert not Event.objects.exists()
    exact = post(client, "/v1/batch", {"batch": calls[:2500]}, auth=basic_auth(source.write_key))
    assert exact.status_code == 200, exact.content
    assert exact.json()["stored"] == 2500
    assert Event.objects.count() == 2500


# --------------------------------------------------------------------------------------
# Invalid items, strict mode, non-metric calls
# --------------------------------------------------------------------------------------

INVALID_CALLS = [
    ({"type": "track", "userId": "u", "messageId": "bad-no-event"}, "event"),
    (track("Email Teleported", "bad-unknown-event"), "not a message-activity event"),
    ({"type": "track", "event": "Email Sent", "messageId": "bad-no-user"}, "userId or anonymousId"),
    (track(message_id="bad-timestamp", timestamp="last tuesday"), "timestamp"),
    (track(message_id="bad-props", properties=["not", "an", "object"]), "properties"),
    (track(message_id="bad-nul", properties={"note": "a\u0000b"}), "NUL"),
    (track(message_id="m" * 201), "messageId"),
    ({"type": ["track"], "event": "Email Sent", "userId": "u", "messageId": "bad-type"}, "type"),
    ({"type": "purchase", "event": "Email Sent", "userId": "u", "messageId": "bad-kind"}, "type"),
    ("just a string", "object"),
]


def _batch_with_invalid_items():
    valid = [track(message_id="ok-1"), track("Push Opened", "ok-2")]
    return [valid[0], *[call for call, _ in INVALID_CALLS], valid[1]]


def _check_rejections(rejected):
    assert [item["index"] for item in rejected] == list(range(1, len(INVALID_CALLS) + 1))
    for item, (call, reason) in zip(rejected, INVALID_CALLS, strict=True):
        expected_id = call.get("messageId") if isinstance(call, dict) else None
        assert item.get("messageId") == expected_id
        assert reason.lower() in item["error"].lower(), item


def test_invalid_items_are_listed_and_valid_ones_stored(client, source):
    body = {"batch": _batch_with_invalid_items()}
    response = post(client, "/v1/batch", body, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["success"], answer["received"], answer["stored"]) == (False, 12, 2)
    assert "meta" not in answer
    _check_rejections(answer["rejected"])
    assert set(Event.objects.values_list("message_id", flat=True)) == {"ok-1", "ok-2"}


def test_strict_mode_answers_400_and_still_stores_valid_items(client, source):
    body = {"batch": _batch_with_invalid_items()}
    response = post(client, "/v1/batch", body, auth=basic_auth(source.write_key), X_Strict_Mode="1")
    assert response.status_code == 400, response.content
    answer = response.json()
    _check_rejections(answer["rejected"])
    errors = answer["meta"]["errors"]
    assert len(errors) == len(INVALID_CALLS)
    assert errors[0].startswith("event 1 (bad-no-event): ")
    assert "event 2 (bad-unknown-event)" in errors[1]
    assert answer["stored"] == 2
    assert set(Event.objects.values_list("message_id", flat=True)) == {"ok-1", "ok-2"}


def test_strict_mode_with_only_valid_items_is_200(client, source):
    response = post(
        client,
        "/v1/batch",
        {"batch": [track(message_id="ok")]},
        auth=basic_auth(source.write_key),
        X_Strict_Mode="1",
    )
    assert response.status_code == 200, response.content
    assert "meta" not in response.json()


def test_invalid_single_track_is_named_in_a_200_and_is_400_in_strict_mode(client, source):
    # As Segment and Data Pipelines answer: 200 naming the rejection, 400 with X-Strict-Mode.
    call = track("Email Teleported", "bad-1")
    response = post(client, "/v1/track", call, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["success"], answer["stored"], "meta" in answer) == (False, 0, False)
    [rejection] = answer["rejected"]
    assert rejection["messageId"] == "bad-1" and "Email Teleported" in rejection["error"]
    strict = post(client, "/v1/track", call, auth=basic_auth(source.write_key), X_Strict_Mode="1")
    assert strict.status_code == 400, strict.content
    [error] = strict.json()["meta"]["errors"]
    assert "Email Teleported" in error and "bad-1" in error
    assert not Event.objects.exists()


def test_non_metric_calls_in_a_batch_are_counted_not_stored(client, source):
    others = [
        {"type": kind, "userId": "u", "messageId": f"other-{kind}"} for kind in NON_METRIC_TYPES
    ]
    # Non-metric calls need not be valid track calls: they never fail a batch.
    others.append({"type": "identify"})
    body = {"batch": [*others, track(message_id="m-1")]}
    response = post(client, "/v1/batch", body, auth=basic_auth(source.write_key), X_Strict_Mode="1")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["ignored"] == {"identify": 2, "page": 1, "screen": 1, "group": 1, "alias": 1}
    assert (answer["success"], answer["received"], answer["stored"]) == (True, 7, 1)
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m-1"]


@pytest.mark.parametrize("kind", NON_METRIC_TYPES)
def test_non_metric_endpoints_answer_200_and_store_nothing(client, source, kind):
    body = {"type": kind, "userId": "u", "traits": {"email": "a@example.com"}, "messageId": "n-1"}
    response = post(client, f"/v1/{kind}", body, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    assert response.json()["ignored"] == {kind: 1}
    assert not Event.objects.exists()


def test_identify_sent_to_track_is_ignored(client, source):
    body = {"type": "identify", "userId": "u", "messageId": "n-1"}
    response = post(client, "/v1/track", body, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    assert response.json()["ignored"] == {"identify": 1}
    assert not Event.objects.exists()


# --------------------------------------------------------------------------------------
# messageId: assigned when missing, stored once when repeated
# --------------------------------------------------------------------------------------


def test_missing_message_id_gets_a_server_assigned_one(client, source):
    auth = basic_auth(source.write_key)
    for _ in range(2):
        assert post(client, "/v1/track", track(), auth=auth).status_code == 200
    response = post(client, "/v1/batch", {"batch": [track(), track(messageId="")]}, auth=auth)
    assert response.json()["stored"] == 2
    ids = list(Event.objects.values_list("message_id", flat=True))
    assert len(ids) == len(set(ids)) == 4
    assert all(message_id.startswith("ms-") for message_id in ids)
    assert all(row.raw.get("messageId") in (None, "") for row in Event.objects.all())


def test_repeated_message_id_is_stored_once_and_counted_as_duplicate(client, source):
    auth = basic_auth(source.write_key)
    first = track("Email Opened", "dup-1", properties={"version": 1})
    again = track("Email Opened", "dup-1", properties={"version": 2})
    same_batch = post(
        client, "/v1/batch", {"batch": [first, again, track(message_id="dup-2")]}, auth=auth
    )
    assert same_batch.status_code == 200, same_batch.content
    assert (same_batch.json()["stored"], same_batch.json()["duplicates"]) == (2, 1)
    assert same_batch.json()["success"] is True

    next_batch = post(client, "/v1/batch", {"batch": [track(message_id="dup-2"), again]}, auth=auth)
    assert (next_batch.json()["stored"], next_batch.json()["duplicates"]) == (0, 2)

    single = post(client, "/v1/track", again, auth=auth)
    assert single.status_code == 200, single.content
    assert (single.json()["stored"], single.json()["duplicates"]) == (0, 1)

    assert Event.objects.filter(message_id="dup-1").count() == 1
    assert Event.objects.get(message_id="dup-1").properties == {"version": 1}  # the first kept
    assert Event.objects.count() == 2


def test_timestamps_out_of_range_are_rejected_not_a_server_error(client, source):
    calls = [
        track(
            message_id="far-1",
            originalTimestamp="0001-01-01T00:00:00Z",
            sentAt="9999-12-31T23:59:59Z",
        ),
        track(message_id="far-2", timestamp="0001-01-01T00:00:00+05:00"),
        track(message_id="ok-3"),
    ]
    response = post(client, "/v1/batch", {"batch": calls}, auth=basic_auth(source.write_key))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert [r["messageId"] for r in answer["rejected"]] == ["far-1", "far-2"]
    assert all("timestamp" in r["error"] for r in answer["rejected"])
    assert list(Event.objects.values_list("message_id", flat=True)) == ["ok-3"]


def test_catalog_lists_the_names_the_api_accepts(client):
    response = client.get("/api/catalog")
    assert response.status_code == 200
    names = {event["name"] for event in response.json()["events"]}
    assert {"Email Opened", "In-App Clicked", "Subscription Preferences Changed"} <= names


def test_unknown_api_paths_and_wrong_methods_answer_json(client, source):
    missing = client.post("/v1/nope", b"{}", content_type="application/json")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json()["error"] == "no such endpoint: POST /v1/nope"

    wrong_method = client.get("/v1/batch")
    assert wrong_method.status_code == 405
    assert wrong_method["Content-Type"] == "application/json"
    assert wrong_method["Allow"] == "POST"
    assert "method not allowed" in wrong_method.json()["error"]

    # Pages outside the API keep Django's own answers.
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")
