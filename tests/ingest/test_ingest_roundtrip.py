"""Round trips through the HTTP API into PostgreSQL and back.

Every seed event name goes in through ``/v1/track``, every reporting-webhook pair through a
signed ``/webhooks/customerio/<slug>``; each row read back carries the catalogue's event,
channel, metric and semantic flag, the typed ids and the JSON as received.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import orjson
import pytest
from django.db import connection

from metrics_source.forwarding.events import EVENT_JSON_SQL
from metrics_source.ingest.catalog import CHANNEL_LABELS, event_type_by_name
from metrics_source.models import Event
from tests.conftest import cio_signature_headers
from tests.payloads import (
    PARENT_KINDS,
    TIMESTAMP,
    Person,
    expected_event,
    parent_fields,
    parent_kinds_for,
    reference_webhook_pairs,
    seed_event_names,
    seed_events,
    seed_track_examples,
    track_call,
    webhook_payload,
)

TYPED_IDS = ("campaign_id", "broadcast_id", "newsletter_id", "transactional_message_id",
             "action_id", "content_id", "trigger_id", "journey_id")  # fmt: skip


def _auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _track(client, source, body, **headers):
    return client.post(
        "/v1/track",
        orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=_auth(source.write_key),
        **headers,
    )


def _webhook(client, source, payload):
    body = orjson.dumps(payload)
    return client.post(
        f"/webhooks/customerio/{source.source.slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(source.secret, body),
    )


def _seed_rows() -> list[tuple[str, str]]:
    return [(label, name) for label, names in seed_events().items() for name in names]


# ------------------------------------------------------------------------------------------
# Every seed event name through the tracking API
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "name"), _seed_rows())
def test_every_seed_event_round_trips_through_track(client, source, label, name):
    message_id = f"rt-track-{_slug(name)}"
    call = track_call(name, message_id=message_id)
    response = _track(client, source, call)
    assert response.status_code == 200, response.content
    assert (response.json()["stored"], response.json()["rejected"]) == (1, [])

    row = Event.objects.get(message_id=message_id)
    event_type = event_type_by_name(name)
    assert (row.event, row.channel, row.metric, row.semantic) == (
        name,
        event_type.channel.value,
        event_type.metric.value,
        True,
    )
    assert CHANNEL_LABELS[event_type.channel] == label
    assert (row.origin, row.source_id) == ("track", source.source.pk)
    assert (row.user_id, row.email) == ("42", "cool.person@example.com")
    assert (row.campaign_id, row.action_id, row.journey_id) == (
        31,
        96,
        call["properties"]["journey_id"],
    )
    assert row.delivery_id == call["properties"]["delivery_id"]
    assert row.timestamp == datetime(2023, 8, 22, 16, 42, 55, 3000, tzinfo=UTC)
    assert row.properties == call["properties"]
    assert row.context == call["context"]
    assert row.raw == call


def test_every_seed_name_was_sent(client, source):
    # Guards the parametrisation above against an empty or partial seed.
    assert len(_seed_rows()) == len(seed_event_names()) >= 50


@pytest.mark.parametrize("spelling", [str.lower, str.upper])
def test_a_name_in_another_case_is_stored_under_the_catalogue_name(client, source, spelling):
    message_id = f"rt-case-{spelling.__name__}"
    response = _track(client, source, track_call(spelling("In-App Clicked"), message_id=message_id))
    assert response.status_code == 200, response.content
    assert Event.objects.get(message_id=message_id).event == "In-App Clicked"


@pytest.mark.parametrize("name", ["Email Opened", "Push Sent"])
def test_the_seed_examples_are_stored_as_they_are(client, source, name):
    seed = seed_track_examples()[name]
    response = _track(client, source, seed)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id=seed["messageId"])
    assert row.event == name
    assert row.properties == seed["properties"]
    assert row.context == seed["context"]
    assert row.timestamp == datetime.fromisoformat(seed["timestamp"])
    assert row.original_timestamp == datetime.fromisoformat(seed["originalTimestamp"])
    assert row.sent_at == datetime.fromisoformat(seed["sentAt"])
    assert row.raw == seed


# ------------------------------------------------------------------------------------------
# Every reporting-webhook pair through the signed webhook endpoint
# ------------------------------------------------------------------------------------------


def _one_case_per_pair():
    """Each reference pair once, the parent kind rotating so every kind is stored."""
    cases = []
    for index, (object_type, metric) in enumerate(reference_webhook_pairs()):
        kinds = parent_kinds_for(object_type)
        parent = kinds[index % len(kinds)] if kinds else None
        event_id = f"rt-hook-{object_type}-{metric}"
        cases.append(webhook_payload(object_type, metric, parent=parent, event_id=event_id))
    return cases


WEBHOOK_CASES = _one_case_per_pair()


def test_one_case_for_every_reference_pair_and_every_parent_kind():
    assert {(c.object_type, c.metric) for c in WEBHOOK_CASES} == set(reference_webhook_pairs())
    assert len(WEBHOOK_CASES) == len(reference_webhook_pairs())
    assert {c.parent for c in WEBHOOK_CASES} == {*PARENT_KINDS, None}


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=str)
def test_every_webhook_pair_round_trips(client, source, case):
    response = _webhook(client, source, case.payload)
    assert response.status_code == 200, response.content
    expected = expected_event(case.object_type, case.metric, has_delivery=case.parent is not None)
    assert response.json() == {
        "success": True,
        "messageId": case.event_id,
        "event": expected.name,
        "duplicate": False,
    }

    row = Event.objects.get(message_id=case.event_id)
    event_type = event_type_by_name(expected.name)
    assert (row.event, row.channel, row.metric, row.semantic) == (
        expected.name,
        expected.channel,
        expected.metric,
        expected.name in seed_event_names(),
    )
    assert (row.channel, row.metric, row.semantic) == (
        event_type.channel.value,
        event_type.metric.value,
        event_type.semantic,
    )
    assert (row.origin, row.source_id) == ("webhook", source.source.pk)
    assert (row.user_id, row.anonymous_id, row.email) == ("42", None, "cool.person@example.com")
    parents = parent_fields(case.parent) if case.parent else {}
    assert {name: getattr(row, name) for name in TYPED_IDS} == {
        name: parents.get(name) for name in TYPED_IDS
    }
    assert row.delivery_id == case.payload["data"].get("delivery_id")
    assert row.timestamp == row.original_timestamp == datetime.fromtimestamp(TIMESTAMP, tz=UTC)
    assert row.sent_at is not None
    expected_properties = {**case.data_without_identifiers, "userId": "42"}
    if case.parent is None:
        expected_properties["object_type"] = case.object_type
    assert row.properties == expected_properties
    assert row.context == {"traits": {"email": "cool.person@example.com", "cio_id": "d9c106000001"}}
    assert row.raw == case.payload


def test_a_repeated_webhook_is_a_duplicate_and_stored_once(client, source):
    case = webhook_payload("email", "opened", event_id="rt-repeat-1")
    first = _webhook(client, source, case.payload)
    again = _webhook(client, source, case.payload)
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert Event.objects.filter(message_id="rt-repeat-1").count() == 1


def test_both_kinds_of_email_unsubscribe_round_trip(client, source):
    message = webhook_payload("email", "unsubscribed", message_level=True, event_id="rt-unsub-m")
    person = webhook_payload("email", "unsubscribed", parent=None, event_id="rt-unsub-p")
    assert _webhook(client, source, message.payload).status_code == 200
    assert _webhook(client, source, person.payload).status_code == 200
    rows = {r.message_id: r for r in Event.objects.filter(message_id__startswith="rt-unsub-")}
    assert (rows["rt-unsub-m"].event, rows["rt-unsub-m"].channel) == ("Email Unsubscribed", "email")
    assert (rows["rt-unsub-p"].event, rows["rt-unsub-p"].channel) == (
        "Unsubscribed",
        "subscription",
    )


def test_preferences_changed_with_object_type_type_round_trips(client, source):
    case = webhook_payload("customer", "cio_subscription_preferences_changed", parent=None,
                           event_id="rt-prefs")  # fmt: skip
    payload = dict(case.payload)
    payload["object_type_type"] = payload.pop("object_type")
    response = _webhook(client, source, payload)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="rt-prefs")
    assert (row.event, row.metric) == ("Subscription Preferences Changed", "preferences_changed")


# ------------------------------------------------------------------------------------------
# Values at the edges of the typed columns
# ------------------------------------------------------------------------------------------


def test_ids_that_do_not_fit_their_columns_are_stored_as_properties(client, source):
    properties = {
        "journey_id": "j" * 150,  # the column holds 100
        "delivery_id": "d" * 250,  # the column holds 200
        "campaign_id": "²",  # a digit int() cannot read
        "broadcast_id": str(2**63 - 1),
        "newsletter_id": 2**63,  # beyond bigint
        "action_id": "12ab",
    }
    call = {
        "event": "Email Opened",
        "userId": "42",
        "messageId": "rt-edges",
        "properties": properties,
    }
    response = _track(client, source, call)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="rt-edges")
    assert (row.journey_id, row.delivery_id, row.campaign_id) == (None, None, None)
    assert (row.broadcast_id, row.newsletter_id, row.action_id) == (2**63 - 1, None, None)
    assert row.properties == properties


def test_property_keys_differing_only_by_whitespace_are_all_stored(client, source):
    properties = {"plan": "a", "plan ": "b", " plan": "c"}
    call = {
        "event": "Email Opened",
        "userId": "42",
        "messageId": "rt-keys",
        "properties": properties,
    }
    assert _track(client, source, call).status_code == 200
    assert Event.objects.get(message_id="rt-keys").properties == properties


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"userId": "u" * 201}, "userId is longer than 200"),
        ({"properties": {"note": "a\x00b"}}, "NUL"),
        ({"userId": "4\x002"}, "NUL"),
        ({"timestamp": "0001-01-01T00:00:00+05:00"}, "out of range"),
        ({"event": "Order Completed"}, "not a message-activity event"),
    ],
)
def test_an_event_that_cannot_be_stored_is_refused_clearly(client, source, change, message):
    call = {"event": "Email Opened", "userId": "42", "messageId": "rt-refused", **change}
    response = _track(client, source, call)
    assert response.status_code == 200, response.content
    assert response.json()["success"] is False
    assert message in response.json()["rejected"][0]["error"]
    assert not Event.objects.filter(message_id="rt-refused").exists()


def test_a_webhook_with_a_nul_is_stored_and_forwards_as_json(client, source):
    # Refused, Customer.io would retry it for days and hold back every later webhook. jsonb
    # cannot hold NUL: the stored event has U+FFFD there, the payload as received keeps it.
    case = webhook_payload("email", "opened", event_id="rt-nul-hook")
    case.payload["data"]["subject"] = "Hello\x00"
    case.payload["data"]["integrations"] = "no\x00where"  # the forwarder's raw fallback
    response = _webhook(client, source, case.payload)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="rt-nul-hook")
    assert row.properties["subject"] == "Hello\ufffd"
    assert row.raw["data"]["subject"] == "Hello\x00"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {EVENT_JSON_SQL} FROM {Event._meta.db_table} e WHERE e.id = %s",  # noqa: S608
            [row.pk],
        )
        forwarded = orjson.loads(bytes(cursor.fetchone()[0]))
    assert forwarded["messageId"] == "rt-nul-hook"
    assert forwarded["properties"]["subject"] == "Hello\ufffd"


def test_a_webhook_whose_person_id_is_too_long_is_stored_under_the_email(client, source):
    case = webhook_payload(
        "email", "opened", event_id="rt-long-id", person=Person(id="u" * 201, customer_id="u" * 201)
    )
    response = _webhook(client, source, case.payload)
    assert response.status_code == 200, response.content
    row = Event.objects.get(message_id="rt-long-id")
    assert (row.user_id, row.anonymous_id) == (None, "cool.person@example.com")
    assert row.raw["data"]["identifiers"]["id"] == "u" * 201


def test_copying_row_values_stores_what_the_endpoint_stores(client, source):
    """The ingest bench's reference COPYs mapped rows with ``row_values``: it must load the
    same row the endpoint stores, or the bench would compare against a different table."""
    from metrics_source.ingest.mapping import row_from_call
    from metrics_source.ingest.service import STORED_COLUMNS, row_values
    from metrics_source.models import Origin

    call = track_call("Push Opened", message_id="bench-reference-1")
    received_at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    row = row_from_call(call, received_at=received_at, raw_json=orjson.dumps(call).decode())[1]
    values = row_values(row, source=source.source, origin=Origin.TRACK)
    assert len(values) == len(STORED_COLUMNS)
    with connection.cursor() as cursor:
        copy_sql = f"COPY {Event._meta.db_table} ({', '.join(STORED_COLUMNS)}) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            copy.write_row(values)
    copied = Event.objects.get(message_id="bench-reference-1")

    call["messageId"] = "bench-reference-2"
    assert _track(client, source, call).status_code == 200
    sent = Event.objects.get(message_id="bench-reference-2")

    differing = {"id", "message_id", "raw", "received_at"}
    for field in Event._meta.concrete_fields:
        if field.attname not in differing:
            assert getattr(copied, field.attname) == getattr(sent, field.attname), field.attname
    assert copied.source_id == source.source.pk and copied.origin == Origin.TRACK
    assert copied.raw == {**call, "messageId": "bench-reference-1"}


BIG = 2**70  # JSON allows it; orjson alone would store 1.1805916207174113e+21


def test_integers_beyond_64_bits_are_stored_exactly_from_the_tracking_api(client, source):
    call = track_call("Email Opened", message_id="big-1")
    call["properties"]["big"] = BIG
    call["context"]["negative"] = -(2**63) - 1
    response = client.post(
        "/v1/track",
        json.dumps(call),  # orjson cannot write these integers; the standard library can
        content_type="application/json",
        HTTP_AUTHORIZATION=_auth(source.write_key),
    )
    assert response.json()["stored"] == 1
    event = Event.objects.get(message_id="big-1")
    assert event.properties["big"] == BIG and type(event.properties["big"]) is int
    assert event.context["negative"] == -(2**63) - 1
    assert event.raw["properties"]["big"] == BIG
    with connection.cursor() as cursor:  # jsonb keeps every digit, and so does raw's text
        cursor.execute(
            "SELECT properties->>'big', raw::jsonb->'properties'->>'big'"
            " FROM metrics_source_event WHERE message_id = 'big-1'"
        )
        assert cursor.fetchone() == (str(BIG), str(BIG))


def test_integers_beyond_64_bits_are_stored_exactly_from_a_webhook(client, source):
    payload = webhook_payload("email", "opened", event_id="01HBIGINTEGER000000000000001").payload
    payload["data"]["big"] = BIG
    body = json.dumps(payload).encode()
    response = client.post(
        f"/webhooks/customerio/{source.source.slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(source.secret, body),
    )
    assert response.status_code == 200
    event = Event.objects.get(message_id="01HBIGINTEGER000000000000001")
    assert event.properties["big"] == BIG
    assert event.raw["data"]["big"] == BIG
