"""Mapping: reporting webhooks and track calls -> semantic track events -> typed rows.

Expected events are written out by hand from the reference's rules (``messageId`` =
``event_id``, ISO timestamps with milliseconds and a Z, ``userId`` = ``identifiers.id`` else
``customer_id``, ``anonymousId`` = the email when there is no id, ``context.traits.email``,
``properties`` = the data without ``identifiers`` plus a copy of ``userId``).

One module on purpose (over 400 lines): the expected events sit side by side, one per case of the
reference, so a missing case shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import override_settings

from metrics_source.ingest.catalog import event_type_by_name
from metrics_source.ingest.mapping import (
    MAX_MESSAGE_ID_LENGTH,
    MappingError,
    row_from_call,
    row_from_track_event,
    track_event_from_call,
    track_event_from_webhook,
)
from tests.payloads import (
    EMAIL_ONLY_PERSON,
    LEGACY_PERSON,
    PERSON,
    TIMESTAMP_ISO,
    Person,
    WebhookCase,
    all_webhook_cases,
    expected_event,
    official_webhook_examples,
    parent_fields,
    seed_event_names,
    seed_track_examples,
    track_call,
    webhook_payload,
)


@pytest.fixture(autouse=True, scope="module")
def _any_plausible_time():
    """These tests are about mapping, over any representable time: the plausibility window
    (tests/ingest/test_timestamp_window.py) is opened as wide as the calendar here."""
    with override_settings(EVENT_MAX_AGE_DAYS=10**7, EVENT_MAX_FUTURE_SECONDS=10**12):
        yield


SENT_AT = datetime(2021, 2, 11, 17, 4, 51, tzinfo=UTC)
SENT_AT_ISO = "2021-02-11T17:04:51.000Z"
RECEIVED_AT = datetime(2023, 8, 22, 16, 42, 57, 742000, tzinfo=UTC)


def _row(event_type, event, raw=None):
    raw_json = orjson.dumps(raw if raw is not None else event).decode()
    return row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=raw_json)


# ------------------------------------------------------------------------------------------
# The official examples
# ------------------------------------------------------------------------------------------

OFFICIAL_EXPECTED = [
    {
        "type": "track",
        "event": "Subscribed",
        "userId": "42",
        "messageId": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        "timestamp": "2021-02-11T17:04:49.000Z",
        "originalTimestamp": "2021-02-11T17:04:49.000Z",
        "sentAt": SENT_AT_ISO,
        "context": {"traits": {"email": "test@example.com", "cio_id": "d9c106000001"}},
        "properties": {
            "customer_id": "0200000001",
            "email_address": "test@example.com",
            "object_type": "customer",
            "userId": "42",
        },
    },
    {
        "type": "track",
        "event": "Email Sent",
        "userId": "42",
        "messageId": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        "timestamp": "2021-02-11T17:04:49.000Z",
        "originalTimestamp": "2021-02-11T17:04:49.000Z",
        "sentAt": SENT_AT_ISO,
        "context": {"traits": {"email": "test@example.com", "cio_id": "d9c106000001"}},
        "properties": {
            "action_id": 42,
            "broadcast_id": 9,
            "customer_id": "0200000001",
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "recipient": "test@example.com",
            "userId": "42",
        },
    },
    {
        "type": "track",
        "event": "SMS Sent",
        "userId": "42",
        "messageId": "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        "timestamp": "2021-02-11T17:04:49.000Z",
        "originalTimestamp": "2021-02-11T17:04:49.000Z",
        "sentAt": SENT_AT_ISO,
        "context": {"traits": {"email": "test@example.com", "cio_id": "d9c106000001"}},
        "properties": {
            "action_id": 42,
            "broadcast_id": 9,
            "customer_id": "0200000001",
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "recipient": "+15551234567",
            "userId": "42",
        },
    },
]


def test_the_reference_has_three_official_examples():
    assert len(official_webhook_examples()) == len(OFFICIAL_EXPECTED)


@pytest.mark.parametrize("index", range(len(OFFICIAL_EXPECTED)))
def test_official_example_maps_to_exactly_the_expected_event(index):
    payload = official_webhook_examples()[index]
    event_type, event = track_event_from_webhook(payload, sent_at=SENT_AT)
    assert event == OFFICIAL_EXPECTED[index]
    assert event_type.name == OFFICIAL_EXPECTED[index]["event"]
    assert event_type.semantic is True


def test_official_email_sent_example_becomes_a_row_with_typed_columns():
    payload = official_webhook_examples()[1]
    event_type, event = track_event_from_webhook(payload, sent_at=SENT_AT)
    row = _row(event_type, event, raw=payload)
    assert (row.event, row.channel, row.metric, row.semantic) == (
        "Email Sent",
        "email",
        "sent",
        True,
    )
    assert (row.message_id, row.user_id, row.anonymous_id) == (
        "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
        "42",
        None,
    )
    assert (row.email, row.delivery_id) == ("test@example.com", "RPILAgUBcRhIBqSfeiIwdIYJKxTY")
    assert (row.broadcast_id, row.action_id, row.campaign_id) == (9, 42, None)
    assert row.timestamp == datetime(2021, 2, 11, 17, 4, 49, tzinfo=UTC)
    assert row.sent_at == SENT_AT
    assert orjson.loads(row.raw_json) == payload


# The seed's own examples, as the webhooks that would produce them. Webhook timestamps are
# whole seconds, so the seed's ".003" timestamp becomes ".000"; sentAt is the signing time.
SEED_WEBHOOKS = {
    "Email Opened": {
        "event_id": "01H8F21G9KK14JKX233RDFJCNM",
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1692722575,
        "data": {
            "customer_id": "12345",
            "delivery_id": "RKK4AwUAAYoeIC5PHMYd6-vTAYhWkQ==",
            "identifiers": {"id": "12345", "email": "cool.person@example.com"},
            "recipient": "cool.person@example.com",
            "subject": "Password reset request",
            "transactional_message_id": 8,
        },
    },
    "Push Sent": {
        "event_id": "01H8F21G9KK14JKX233RDFJCNM",
        "object_type": "push",
        "metric": "sent",
        "timestamp": 1692722575,
        "data": {
            "customer_id": "12345",
            "delivery_id": "dgS_ugcCBYUGhAYBlNIe87ANFfGw2QrqUUY1",
            "identifiers": {"id": "12345", "email": None},
            "content_id": 1,
            "newsletter_id": 1,
            "recipients": [{"device_id": "123", "device_platform": "android"}],
        },
    },
}


@pytest.mark.parametrize("name", sorted(SEED_WEBHOOKS))
def test_seed_example_is_what_its_webhook_becomes(name):
    seed = seed_track_examples()[name]
    expected = {key: value for key, value in seed.items() if key != "receivedAt"}
    expected["timestamp"] = "2023-08-22T16:42:55.000Z"
    sent_at = datetime(2023, 8, 22, 16, 42, 57, 739000, tzinfo=UTC)
    _, event = track_event_from_webhook(SEED_WEBHOOKS[name], sent_at=sent_at)
    assert event == expected


@pytest.mark.parametrize("name", ["Email Opened", "Push Sent"])
def test_seed_example_sent_as_a_track_call_is_kept_as_it_is(name):
    seed = seed_track_examples()[name]
    event_type, event = track_event_from_call(seed, received_at=RECEIVED_AT)
    assert event_type.name == name
    assert event == {key: value for key, value in seed.items() if key != "receivedAt"}
    if name == "Push Sent":
        assert event["properties"]["recipients"] == [
            {"device_id": "123", "device_platform": "android"}
        ]


# ------------------------------------------------------------------------------------------
# A realistic payload for every channel and metric, under every parent kind
# ------------------------------------------------------------------------------------------


def _expected_properties(case: WebhookCase) -> dict:
    expected = dict(case.data_without_identifiers)
    if case.person.id:
        expected["userId"] = case.person.id
    if case.parent is None:
        expected["object_type"] = case.object_type
    return expected


@pytest.mark.parametrize("case", all_webhook_cases(), ids=str)
def test_every_channel_and_metric_maps_to_its_event(case: WebhookCase):
    event_type, event = track_event_from_webhook(case.payload, sent_at=SENT_AT)
    expected = expected_event(case.object_type, case.metric, has_delivery=case.parent is not None)
    assert (event["event"], event_type.channel.value, event_type.metric.value) == (
        expected.name,
        expected.channel,
        expected.metric,
    )
    assert event_type.semantic is (expected.name in seed_event_names())
    assert event["type"] == "track"
    assert event["messageId"] == case.event_id
    assert event["userId"] == "42"
    assert "anonymousId" not in event
    assert event["timestamp"] == event["originalTimestamp"] == TIMESTAMP_ISO
    assert event["sentAt"] == SENT_AT_ISO
    assert event["context"] == {
        "traits": {"email": "cool.person@example.com", "cio_id": "d9c106000001"}
    }
    assert event["properties"] == _expected_properties(case)


@pytest.mark.parametrize("case", all_webhook_cases(), ids=str)
def test_every_channel_and_metric_becomes_a_row_with_its_parent_ids(case: WebhookCase):
    event_type, event = track_event_from_webhook(case.payload, sent_at=SENT_AT)
    row = _row(event_type, event, raw=case.payload)
    expected = expected_event(case.object_type, case.metric, has_delivery=case.parent is not None)
    assert (row.event, row.channel, row.metric) == (
        expected.name,
        expected.channel,
        expected.metric,
    )
    assert row.semantic is (expected.name in seed_event_names())
    parents = parent_fields(case.parent) if case.parent else {}
    for column in (
        "campaign_id",
        "broadcast_id",
        "newsletter_id",
        "transactional_message_id",
        "action_id",
        "content_id",
        "trigger_id",
        "journey_id",
    ):
        assert getattr(row, column) == parents.get(column), column
    assert row.delivery_id == case.payload["data"].get("delivery_id")
    assert (row.user_id, row.email) == ("42", "cool.person@example.com")
    assert orjson.loads(row.properties_json) == event["properties"]


@pytest.mark.parametrize(
    ("object_type", "metric"),
    [("email", "opened"), ("push", "delivered"), ("sms", "replied"), ("customer", "subscribed")],
)
def test_a_person_known_only_by_email_is_anonymous_with_that_email(object_type, metric):
    parent = None if object_type == "customer" else "campaign"
    case = webhook_payload(object_type, metric, parent=parent, person=EMAIL_ONLY_PERSON)
    _, event = track_event_from_webhook(case.payload)
    assert "userId" not in event
    assert event["anonymousId"] == "only.email@example.com"
    assert event["context"]["traits"]["email"] == "only.email@example.com"
    assert "userId" not in event["properties"]
    assert "sentAt" not in event  # nothing signed it


def test_an_email_too_long_for_the_id_column_leaves_the_cio_id_as_anonymous_id():
    email = "a" * 230 + "@example.com"  # a valid address, longer than the 200-character column
    person = Person(id=None, email=email, cio_id="d9c106000001", customer_id="")
    case = webhook_payload("email", "delivered", person=person)
    event_type, event = track_event_from_webhook(case.payload)
    assert event["anonymousId"] == "d9c106000001"
    assert event["context"]["traits"]["email"] == email
    row = _row(event_type, event, raw=case.payload)
    assert (row.anonymous_id, row.email) == ("d9c106000001", email)


def test_user_id_is_the_workspace_identifier_before_the_legacy_customer_id():
    case = webhook_payload("email", "delivered", person=LEGACY_PERSON)
    _, event = track_event_from_webhook(case.payload)
    assert event["userId"] == "42"
    assert event["properties"]["customer_id"] == "0200000001"
    assert event["properties"]["userId"] == "42"


def test_user_id_falls_back_to_customer_id():
    case = webhook_payload("email", "opened", person=Person(id=None, customer_id="0200000001"))
    _, event = track_event_from_webhook(case.payload)
    assert event["userId"] == event["properties"]["userId"] == "0200000001"
    assert "anonymousId" not in event


def test_a_deleted_person_keeps_the_workspace_id_in_customer_id():
    # customer_id is deprecated and blank for deleted people.
    case = webhook_payload("email", "bounced", person=Person(id="42", customer_id=""))
    _, event = track_event_from_webhook(case.payload)
    assert event["properties"]["customer_id"] == "42"


def test_email_trait_falls_back_to_the_email_recipient():
    case = webhook_payload("email", "clicked", person=Person(id="42", email=None, cio_id=None))
    _, event = track_event_from_webhook(case.payload)
    assert event["context"] == {"traits": {"email": "someone@example.com"}}


@pytest.mark.parametrize(
    ("object_type", "recipient"),
    [("webhook", "https://user:pw@hooks.example.com/x"), ("slack", "#ops@night")],
)
def test_a_non_email_recipient_is_never_taken_for_an_email(object_type, recipient):
    case = webhook_payload(
        object_type, "sent", person=Person(id=None, email=None, cio_id=None, customer_id="")
    )
    case.payload["data"]["recipient"] = recipient
    event_type, event = track_event_from_webhook(case.payload)
    assert event["context"] == {"traits": {}}
    assert "anonymousId" not in event
    row = _row(event_type, event, raw=case.payload)
    assert row.email is None


def test_a_person_with_only_a_cio_id_is_anonymous_with_it():
    case = webhook_payload("push", "opened", person=Person(id=None, email=None, customer_id=""))
    _, event = track_event_from_webhook(case.payload)
    assert event["anonymousId"] == "d9c106000001"
    assert "userId" not in event


def test_push_recipients_are_kept():
    case = webhook_payload("push", "bounced", parent="transactional")
    _, event = track_event_from_webhook(case.payload)
    assert event["properties"]["recipients"] == case.payload["data"]["recipients"]
    assert event["properties"]["recipients"][1]["failure_message"]


def test_email_unsubscribed_with_a_delivery_is_the_message_metric():
    case = webhook_payload("email", "unsubscribed", message_level=True)
    event_type, event = track_event_from_webhook(case.payload)
    assert (event["event"], event_type.channel.value) == ("Email Unsubscribed", "email")
    assert event["properties"]["subject"] == "Password reset request"
    assert "object_type" not in event["properties"]


def test_email_unsubscribed_without_a_delivery_is_the_person_level_event():
    case = webhook_payload("email", "unsubscribed", parent=None)
    event_type, event = track_event_from_webhook(case.payload)
    assert (event["event"], event_type.channel.value) == ("Unsubscribed", "subscription")
    # The channel that triggered the change is kept.
    assert event["properties"]["object_type"] == "email"
    assert event["properties"]["email_address"] == "cool.person@example.com"


def test_preferences_changed_accepts_the_object_type_type_spelling():
    case = webhook_payload("customer", "cio_subscription_preferences_changed", parent=None)
    payload = dict(case.payload)
    payload["object_type_type"] = payload.pop("object_type")
    event_type, event = track_event_from_webhook(payload)
    assert event["event"] == "Subscription Preferences Changed"
    assert event_type.metric.value == "preferences_changed"
    assert event["properties"]["content"] == '{"topics":{"topic_7":false}}'
    assert event["properties"]["object_type"] == "customer"


def test_object_type_type_is_used_when_object_type_is_null():
    case = webhook_payload("customer", "cio_subscription_preferences_changed", parent=None)
    payload = {**case.payload, "object_type": None, "object_type_type": "email"}
    _, event = track_event_from_webhook(payload)
    assert event["event"] == "Subscription Preferences Changed"
    assert event["properties"]["object_type"] == "email"


def test_an_sms_stop_reply_with_a_delivery_is_kept_as_unsubscribed():
    case = webhook_payload("sms", "unsubscribed", parent=None)
    case.payload["data"]["delivery_id"] = "RPILAgUBcRhI-sms=="
    _, event = track_event_from_webhook(case.payload)
    assert event["event"] == "Unsubscribed"
    assert event["properties"]["delivery_id"] == "RPILAgUBcRhI-sms=="


def test_fractional_timestamps_keep_milliseconds():
    case = webhook_payload("email", "opened", timestamp=0)
    case.payload["timestamp"] = 1613063089.25
    _, event = track_event_from_webhook(case.payload)
    assert event["timestamp"] == "2021-02-11T17:04:49.250Z"


def test_event_id_is_trimmed_and_becomes_message_id():
    case = webhook_payload("email", "opened", event_id="  01E4C4CT6YDC7Y5M7FE1GWWPQJ ")
    _, event = track_event_from_webhook(case.payload)
    assert event["messageId"] == "01E4C4CT6YDC7Y5M7FE1GWWPQJ"


def _valid_envelope() -> dict:
    return webhook_payload("email", "opened").payload


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("event_id"), "event_id"),
        (lambda p: p.update(event_id="  "), "event_id"),
        (lambda p: p.update(event_id=12345), "event_id"),
        (lambda p: p.update(event_id="x" * (MAX_MESSAGE_ID_LENGTH + 1)), "event_id"),
        (lambda p: p.pop("object_type"), "object_type"),
        (lambda p: p.update(metric=["opened"]), "metric"),
        (lambda p: p.pop("timestamp"), "timestamp"),
        (lambda p: p.update(timestamp="1613063089"), "timestamp"),
        (lambda p: p.update(timestamp=True), "timestamp"),
        (lambda p: p.update(timestamp=10**20), "timestamp"),
        (lambda p: p.update(timestamp=float("inf")), "timestamp"),
        (lambda p: p.pop("data"), "data"),
        (lambda p: p.update(data=[1, 2]), "data"),
        (lambda p: p.update(metric="opened_twice"), "opened_twice"),
        (lambda p: p.update(object_type="fax"), "fax"),
        (lambda p: p.update(object_type="sms"), "'sms'/'opened'"),
    ],
)
def test_a_broken_envelope_is_refused_with_a_reason(change, message):
    payload = _valid_envelope()
    change(payload)
    with pytest.raises(MappingError) as error:
        track_event_from_webhook(payload)
    assert message in str(error.value)


@pytest.mark.parametrize("payload", [None, [], "x", 3, [{"event_id": "a"}]])
def test_a_payload_that_is_not_an_object_is_refused(payload):
    with pytest.raises(MappingError, match="JSON object"):
        track_event_from_webhook(payload)


def test_identifiers_of_the_wrong_shape_are_ignored_not_fatal():
    payload = _valid_envelope()
    payload["data"]["identifiers"] = ["42"]
    payload["data"]["customer_id"] = 42
    _, event = track_event_from_webhook(payload)
    assert event["userId"] == "42"  # from customer_id, a number made a string


# ------------------------------------------------------------------------------------------
# Track calls
# ------------------------------------------------------------------------------------------


def test_a_track_call_is_normalised():
    call = track_call("email link clicked", message_id="m-1", user_id="42")
    event_type, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event_type.name == "Email Link Clicked"
    assert event == {
        "type": "track",
        "event": "Email Link Clicked",
        "userId": "42",
        "messageId": "m-1",
        "timestamp": "2023-08-22T16:42:55.003Z",
        "originalTimestamp": "2023-08-22T16:42:55.003Z",
        "context": call["context"],
        "properties": call["properties"],
    }


def test_keys_and_values_of_properties_and_context_are_kept_exactly():
    # Keys that differ only by whitespace are different keys; none may be trimmed or merged.
    properties = {"plan": 1, "plan ": 2, " plan": 3, "\tnote": " padded value "}
    context = {"traits": {"email ": "x@example.com", "email": "y@example.com"}}
    call = {
        "event": " Email Opened ",
        "userId": " 42 ",
        "messageId": " m-keys ",
        "type": " track ",
        "properties": properties,
        "context": context,
    }
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["properties"] == properties
    assert event["context"] == context
    assert (event["event"], event["userId"], event["messageId"]) == ("Email Opened", "42", "m-keys")


def test_batch_context_and_integrations_are_merged_under_the_call():
    call = track_call("Email Opened", message_id="m-2")
    call["context"] = {"library": {"version": "3.0"}, "traits": {"email": "a@example.com"}}
    call["integrations"] = {"Amplitude": False}
    _, event = track_event_from_call(
        call,
        received_at=RECEIVED_AT,
        batch_context={"library": {"name": "analytics-python", "version": "2.3"}, "ip": "10.0.0.1"},
        batch_integrations={"All": True, "Amplitude": True},
    )
    assert event["context"] == {
        "library": {"name": "analytics-python", "version": "3.0"},
        "ip": "10.0.0.1",
        "traits": {"email": "a@example.com"},
    }
    assert event["integrations"] == {"All": True, "Amplitude": False}


def test_contexts_nested_too_deeply_to_merge_are_refused_not_crashed():
    def nested(depth):
        value = 1
        for _ in range(depth):
            value = {"a": value}
        return value

    call = {"event": "Email Sent", "userId": "1", "messageId": "m-deep", "context": nested(1020)}
    with pytest.raises(MappingError, match="nested too deeply"):
        track_event_from_call(call, received_at=RECEIVED_AT, batch_context=nested(1020))


def test_batch_context_applies_to_a_call_without_context():
    call = {"event": "Push Opened", "userId": "7", "messageId": "m-3"}
    _, event = track_event_from_call(call, received_at=RECEIVED_AT, batch_context={"ip": "::1"})
    assert event["context"] == {"ip": "::1"}


def test_clock_skew_is_corrected_from_sent_at_and_original_timestamp():
    # The client's clock is 90 s fast: it says the event happened at 12:00:00 and was sent at
    # 12:00:10; the server received it at 11:58:40 by its own clock.
    received = datetime(2024, 5, 1, 11, 58, 40, tzinfo=UTC)
    call = {
        "event": "SMS Delivered",
        "userId": "42",
        "messageId": "m-4",
        "originalTimestamp": "2024-05-01T12:00:00Z",
        "sentAt": "2024-05-01T12:00:10Z",
    }
    _, event = track_event_from_call(call, received_at=received)
    assert event["timestamp"] == "2024-05-01T11:58:30.000Z"
    assert event["originalTimestamp"] == "2024-05-01T12:00:00.000Z"
    assert event["sentAt"] == "2024-05-01T12:00:10.000Z"


def test_clock_skew_uses_the_batch_sent_at():
    received = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    call = {
        "event": "SMS Sent",
        "userId": "42",
        "messageId": "m-5",
        "originalTimestamp": "2024-05-01T12:00:00Z",
    }
    _, event = track_event_from_call(
        call, received_at=received, batch_sent_at=received + timedelta(seconds=5)
    )
    assert event["timestamp"] == "2024-05-01T11:59:55.000Z"
    assert event["sentAt"] == "2024-05-01T12:00:05.000Z"


def test_without_sent_at_the_original_timestamp_is_the_timestamp():
    # Nothing to correct by: a year-old call imported today is dated a year ago, not today.
    call = {
        "event": "SMS Sent",
        "userId": "42",
        "messageId": "m-5b",
        "originalTimestamp": "2022-05-01T12:00:00+02:00",
    }
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["timestamp"] == event["originalTimestamp"] == "2022-05-01T10:00:00.000Z"
    assert "sentAt" not in event
    row = row_from_call(call, received_at=RECEIVED_AT, raw_json=orjson.dumps(call).decode())[1]
    assert row.timestamp == row.original_timestamp == datetime(2022, 5, 1, 10, tzinfo=UTC)


def test_an_explicit_timestamp_is_not_corrected():
    call = {
        "event": "SMS Sent",
        "userId": "42",
        "messageId": "m-6",
        "timestamp": "2024-05-01T12:00:00Z",
        "originalTimestamp": "2024-05-01T12:00:00Z",
        "sentAt": "2024-05-01T13:00:00Z",
    }
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["timestamp"] == "2024-05-01T12:00:00.000Z"


def test_a_call_without_timestamps_happened_when_received():
    call = {"event": "Slack Sent", "userId": "42", "messageId": "m-7"}
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["timestamp"] == event["originalTimestamp"] == "2023-08-22T16:42:57.742Z"
    assert "sentAt" not in event


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-08-22T16:42:55.003", "2023-08-22T16:42:55.003Z"),  # no zone: UTC
        ("2023-08-22 16:42:55", "2023-08-22T16:42:55.000Z"),
        ("2023-08-22T18:42:55.003+02:00", "2023-08-22T16:42:55.003Z"),
        ("2023-08-22T16:42:55.123456Z", "2023-08-22T16:42:55.123Z"),
    ],
)
def test_timestamps_are_read_as_utc_and_written_iso_with_milliseconds(given, expected):
    call = {"event": "Email Sent", "userId": "42", "messageId": "m-8", "timestamp": given}
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["timestamp"] == expected


@pytest.mark.parametrize(("user_id", "expected"), [(42, "42"), (4.0, "4"), (" 42 ", "42")])
def test_a_numeric_user_id_becomes_a_string(user_id, expected):
    call = {"event": "Email Sent", "userId": user_id, "messageId": "m-9"}
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["userId"] == expected


def test_a_numeric_anonymous_id_becomes_a_string():
    call = {"event": "Email Sent", "anonymousId": 9001, "messageId": "m-10"}
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["anonymousId"] == "9001" and "userId" not in event


@pytest.mark.parametrize("name", ["Order Completed", "Email Openned", "", "Email Opened Twice"])
def test_an_unknown_event_name_is_refused_clearly(name):
    call = {"event": name, "userId": "42", "messageId": "m-11"}
    with pytest.raises(MappingError, match="not a message-activity event") as error:
        track_event_from_call(call, received_at=RECEIVED_AT)
    assert repr(name) in str(error.value)


def test_a_call_without_event_is_refused():
    with pytest.raises(MappingError, match="event"):
        track_event_from_call({"userId": "42"}, received_at=RECEIVED_AT)


@pytest.mark.parametrize("ids", [{}, {"userId": None}, {"userId": "  ", "anonymousId": ""}])
def test_a_call_without_user_or_anonymous_id_is_refused(ids):
    call = {"event": "Email Sent", "messageId": "m-12", **ids}
    with pytest.raises(MappingError, match="userId or anonymousId is required"):
        track_event_from_call(call, received_at=RECEIVED_AT)


def test_a_message_id_over_the_limit_is_refused_and_one_at_the_limit_kept():
    call = {"event": "Email Sent", "userId": "42", "messageId": "m" * (MAX_MESSAGE_ID_LENGTH + 1)}
    with pytest.raises(MappingError, match=f"messageId.*{MAX_MESSAGE_ID_LENGTH}"):
        track_event_from_call(call, received_at=RECEIVED_AT)
    call["messageId"] = "m" * MAX_MESSAGE_ID_LENGTH
    _, event = track_event_from_call(call, received_at=RECEIVED_AT)
    assert event["messageId"] == call["messageId"]


@pytest.mark.parametrize("message_id", [None, "", "   "])
def test_a_missing_message_id_is_assigned(message_id):
    call = {"event": "Email Sent", "userId": "42"}
    if message_id is not None:
        call["messageId"] = message_id
    _, first = track_event_from_call(dict(call), received_at=RECEIVED_AT)
    _, second = track_event_from_call(dict(call), received_at=RECEIVED_AT)
    assert first["messageId"].strip() and second["messageId"].strip()
    assert first["messageId"] != second["messageId"]
    assert len(first["messageId"]) <= MAX_MESSAGE_ID_LENGTH


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "identify"}, "type must be 'track'"),
        ({"properties": ["a"]}, "properties"),
        ({"context": "web"}, "context"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"messageId": 12}, "messageId"),
        ({"event": 12}, "event"),
    ],
)
def test_a_malformed_call_is_refused_naming_the_field(change, message):
    call = {"event": "Email Sent", "userId": "42", "messageId": "m-13", **change}
    with pytest.raises(MappingError, match=message):
        track_event_from_call(call, received_at=RECEIVED_AT)


@pytest.mark.parametrize("call", [None, [], "Email Sent", 1])
def test_a_call_that_is_not_an_object_is_refused(call):
    with pytest.raises(MappingError):
        track_event_from_call(call, received_at=RECEIVED_AT)


@pytest.mark.parametrize(
    "change",
    [
        # The skew correction would land before year 1.
        {"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"},
        # Valid datetimes whose UTC form is outside the calendar.
        {"timestamp": "0001-01-01T00:00:00+05:00"},
        {"timestamp": "9999-12-31T23:59:59-05:00"},
    ],
)
def test_timestamps_out_of_range_are_refused_not_crashed(change):
    call = {"event": "Email Sent", "userId": "42", "messageId": "m-14", **change}
    with pytest.raises(MappingError, match="timestamp"):
        track_event_from_call(call, received_at=RECEIVED_AT)


# ------------------------------------------------------------------------------------------
# Typed rows
# ------------------------------------------------------------------------------------------


def _call_row(properties: dict, **extra):
    call = {
        "event": "Email Opened",
        "userId": "42",
        "messageId": "m-row",
        "properties": properties,
        **extra,
    }
    event_type, event = track_event_from_call(call, received_at=RECEIVED_AT)
    return _row(event_type, event, raw=call), event


@pytest.mark.parametrize(
    ("value", "column"),
    [
        (31, 31),
        ("31", 31),
        (" 31", None),
        ("abc", None),
        ("3.0", None),
        (3.5, None),
        (True, None),
        (None, None),
        ([31], None),
        ("²", None),  # a Unicode digit that int() does not read
        ("١٢", None),  # Arabic-Indic digits: not an id Customer.io would send
        (2**63 - 1, 2**63 - 1),
        (str(2**63 - 1), 2**63 - 1),
        (2**63, None),
        (str(2**63), None),
        ("9" * 40, None),
        (2**64 - 1, None),
    ],
)
def test_integer_ids_are_typed_when_they_are_64_bit_integers(value, column):
    row, _ = _call_row({"campaign_id": value, "broadcast_id": value, "trigger_id": value})
    assert (row.campaign_id, row.broadcast_id, row.trigger_id) == (column, column, column)
    # Whatever the column holds, the property is kept as sent.
    assert orjson.loads(row.properties_json)["campaign_id"] == value


def test_every_integer_id_has_its_column():
    ids = {
        "campaign_id": 1,
        "broadcast_id": 2,
        "newsletter_id": 3,
        "transactional_message_id": 4,
        "action_id": 5,
        "content_id": 6,
        "trigger_id": 7,
    }
    row, _ = _call_row(ids)
    assert {name: getattr(row, name) for name in ids} == ids


def test_string_ids_have_their_columns():
    row, _ = _call_row({"delivery_id": "RKK4AwUAAYoeIC5PHMYd6-vTAYhWkQ==", "journey_id": "01GW"})
    assert (row.delivery_id, row.journey_id) == ("RKK4AwUAAYoeIC5PHMYd6-vTAYhWkQ==", "01GW")


def test_string_ids_too_long_for_their_column_are_null_but_kept():
    journey_id = "j" * 150  # the journey_id column holds 100 characters
    row, _ = _call_row({"journey_id": journey_id, "delivery_id": "d" * 250})
    assert row.journey_id is None and row.delivery_id is None
    properties = orjson.loads(row.properties_json)
    assert (properties["journey_id"], properties["delivery_id"]) == (journey_id, "d" * 250)


def test_email_comes_from_traits_or_an_email_anonymous_id():
    row, _ = _call_row({}, context={"traits": {"email": "a@example.com"}})
    assert row.email == "a@example.com"
    call = {"event": "Email Opened", "anonymousId": "b@example.com", "messageId": "m-15"}
    event_type, event = track_event_from_call(call, received_at=RECEIVED_AT)
    row = _row(event_type, event)
    assert (row.email, row.anonymous_id, row.user_id) == ("b@example.com", "b@example.com", None)


def test_row_timestamps_are_aware_datetimes():
    row, _ = _call_row(
        {},
        originalTimestamp="2023-08-22T16:42:55Z",
        sentAt="2023-08-22T16:42:56Z",
        timestamp="2023-08-22T16:42:55.003Z",
    )
    assert row.timestamp == datetime(2023, 8, 22, 16, 42, 55, 3000, tzinfo=UTC)
    assert row.original_timestamp == datetime(2023, 8, 22, 16, 42, 55, tzinfo=UTC)
    assert row.sent_at == datetime(2023, 8, 22, 16, 42, 56, tzinfo=UTC)
    assert row.received_at == RECEIVED_AT


@pytest.mark.parametrize(
    "call_change",
    [
        {"properties": {"subject": "a\x00b"}},
        {"properties": {"k\x00": 1}},
        {"context": {"page": {"title": "\x00"}}},
        {"userId": "4\x002"},
        {"anonymousId": "\x00", "userId": None},
        {"messageId": "m\x00"},
    ],
)
def test_nul_characters_are_refused_clearly(call_change):
    call = {"event": "Email Opened", "userId": "42", "messageId": "m-16", **call_change}
    event_type, event = track_event_from_call(call, received_at=RECEIVED_AT)
    with pytest.raises(MappingError, match="NUL"):
        row_from_track_event(
            event_type, event, received_at=RECEIVED_AT, raw_json=orjson.dumps(call).decode()
        )


def test_nul_is_refused_even_when_the_raw_text_hides_it():
    # The typed columns are checked themselves, not only through the JSON beside them.
    event_type = event_type_by_name("Email Opened")
    event = {
        "type": "track",
        "event": "Email Opened",
        "userId": "4\x002",
        "messageId": "m-17",
        "timestamp": "2023-08-22T16:42:55.003Z",
        "context": {},
        "properties": {},
    }
    with pytest.raises(MappingError, match="NUL"):
        row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json="{}")


def test_an_escaped_backslash_before_u0000_text_is_not_a_nul():
    # The text "\u0000" (a backslash and five characters) is storable; only a real NUL is not.
    row, _ = _call_row({"subject": "\\u0000 and \\\\u0000"})
    assert orjson.loads(row.properties_json)["subject"] == "\\u0000 and \\\\u0000"


def test_a_webhook_with_a_nul_keeps_it_only_in_the_payload_as_received():
    case = webhook_payload("email", "opened")
    case.payload["data"]["subject"] = "Hello\x00"
    case.payload["data"]["recipients"] = [{"device\x00": ["a\x00"]}]
    case.payload["data"]["note"] = "a \\u0000 that is text"
    event_type, event = track_event_from_webhook(case.payload)
    row = _row(event_type, event, raw=case.payload)
    properties = orjson.loads(row.properties_json)
    assert properties["subject"] == "Hello\ufffd"
    assert properties["recipients"] == [{"device\ufffd": ["a\ufffd"]}]
    assert properties["note"] == "a \\u0000 that is text"
    assert orjson.loads(row.raw_json)["data"]["subject"] == "Hello\x00"


def test_a_webhook_without_a_nul_is_not_rewritten():
    case = webhook_payload("email", "opened")
    case.payload["data"]["note"] = "a \\u0000 that is text"
    _, event = track_event_from_webhook(case.payload)
    assert event["properties"]["note"] == "a \\u0000 that is text"


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"messageId": "m", "timestamp": "2023-08-22T16:42:55Z", "properties": []},
        {"messageId": "m", "timestamp": "not a time"},
        {"messageId": 5, "timestamp": "2023-08-22T16:42:55Z"},
        {"messageId": "m", "timestamp": "2023-08-22T16:42:55Z", "context": {"traits": "x"}},
        {"messageId": "m", "timestamp": "2023-08-22T16:42:55Z", "properties": {"n": 2**70}},
        {"messageId": "m", "timestamp": "2023-08-22T16:42:55Z", "userId": "\ud800"},
        {"messageId": "m", "timestamp": "2023-08-22T16:42:55Z", "properties": {"s": "\udfff"}},
    ],
)
def test_a_malformed_track_event_gives_a_mapping_error_or_a_row(event):
    event_type = event_type_by_name("Email Opened")
    try:
        row = row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json="{}")
    except MappingError as error:
        assert str(error)
    else:
        # Only two are storable: traits are optional context, and JSON integers have no size
        # limit (jsonb keeps every digit).
        if "context" in event:
            assert event["context"] == {"traits": "x"}
            assert row.email is None
        else:
            assert event["properties"] == {"n": 2**70}
            assert row.properties_json == f'{{"n":{2**70}}}'


@pytest.mark.parametrize("key", ["userId", "anonymousId"])
def test_an_identity_longer_than_its_column_is_refused_not_truncated(key):
    # Truncating an id would merge different people; the columns hold 200 characters.
    call = {"event": "Email Opened", "messageId": "m-18", key: "u" * 201}
    event_type, event = track_event_from_call(call, received_at=RECEIVED_AT)
    with pytest.raises(MappingError, match=f"{key} is longer than 200"):
        _row(event_type, event, raw=call)
    call[key] = "u" * 200
    assert (
        getattr(
            _row(*track_event_from_call(call, received_at=RECEIVED_AT)),
            "user_id" if key == "userId" else "anonymous_id",
        )
        == "u" * 200
    )


def test_a_webhook_identity_longer_than_its_column_gives_way_not_truncated():
    # Never refused for its person: the next identifier that fits the column stands in.
    case = webhook_payload("email", "opened", person=Person(id="u" * 201))
    _, event = track_event_from_webhook(case.payload)
    assert event["userId"] == "42"  # customer_id
    case = webhook_payload(
        "email", "opened", person=Person(id="u" * 201, customer_id="c" * 201, cio_id="x" * 201)
    )
    _, event = track_event_from_webhook(case.payload)
    assert ("userId" in event, event["anonymousId"]) == (False, "cool.person@example.com")
    # Only the columns are limited: the traits keep the Customer.io id whole.
    assert event["context"]["traits"]["cio_id"] == "x" * 201
    case = webhook_payload(
        "email", "opened",
        person=Person(id="u" * 201, customer_id="c" * 201, email="e" * 201, cio_id="x" * 201),
    )  # fmt: skip
    _, event = track_event_from_webhook(case.payload)
    assert "userId" not in event and "anonymousId" not in event


def test_the_same_call_always_maps_to_the_same_event_and_row():
    call = track_call(
        "Email Opened",
        message_id="m-19",
        originalTimestamp="2023-08-22T16:42:55Z",
        sentAt="2023-08-22T16:42:57Z",
    )
    call.pop("timestamp")
    first = track_event_from_call(call, received_at=RECEIVED_AT)
    second = track_event_from_call(call, received_at=RECEIVED_AT)
    assert first == second
    assert _row(*first) == _row(*second)


def test_mapping_does_not_change_its_input():
    case = webhook_payload("push", "clicked", parent="newsletter")
    before = orjson.dumps(case.payload)
    track_event_from_webhook(case.payload, sent_at=SENT_AT)
    assert orjson.dumps(case.payload) == before
    call = track_call("Push Opened", message_id="m-20")
    before = orjson.dumps(call)
    track_event_from_call(call, received_at=RECEIVED_AT, batch_context={"ip": "::1"})
    assert orjson.dumps(call) == before


def test_the_typed_row_keeps_the_expected_parent_ids_of_a_campaign():
    case = webhook_payload("email", "clicked", parent="campaign")
    row = _row(*track_event_from_webhook(case.payload), raw=case.payload)
    expected = parent_fields("campaign")
    assert (row.campaign_id, row.action_id, row.journey_id) == (
        expected["campaign_id"],
        expected["action_id"],
        expected["journey_id"],
    )
    assert PERSON.id == row.user_id
