"""Property-based tests: whatever arrives, the mapping answers with an event or a MappingError,
valid events are never lost, and the endpoints never answer 5xx.

One module on purpose (over 400 lines): the strategies are shared by every property here.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import event as outcome
from hypothesis import strategies as st

from metrics_source.ingest.catalog import EVENT_TYPES, event_type_by_name
from metrics_source.ingest.mapping import (
    MAX_DELIVERY_ID_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    MAX_JOURNEY_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    EventRow,
    MappingError,
    row_from_call,
    row_from_track_event,
    track_event_from_call,
    track_event_from_webhook,
)
from metrics_source.models import Event
from tests.conftest import cio_signature_headers, make_client
from tests.payloads import (
    CHANNEL_LABELS,
    Person,
    all_webhook_cases,
    expected_event,
    webhook_payload,
)


@pytest.fixture(autouse=True, scope="module")
def _any_plausible_time():
    """These tests are about mapping, over any representable time: the plausibility window
    (tests/ingest/test_timestamp_window.py) is opened as wide as the calendar here."""
    with override_settings(EVENT_MAX_AGE_DAYS=10**7, EVENT_MAX_FUTURE_SECONDS=10**12):
        yield


RECEIVED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PURE = settings(max_examples=150, deadline=None)
# The endpoint tests share one source and one test transaction across examples (pytest-django's
# function-scoped fixtures); that is safe because every example uses fresh message ids and
# only counts rows by those ids.
ENDPOINT = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------

# Any text a JSON string can carry once parsed by Python: NUL, control characters and lone
# surrogates included.
any_text = st.text(st.characters(exclude_categories=()), max_size=24)
# Text that survives a strict UTF-8 JSON parser (no lone surrogates); NUL still included.
wire_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
# Text a valid event may carry anywhere.
safe_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=24
)
huge_numbers = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**64), max_value=-(2**63) + 2),
    st.integers().map(lambda n: n * 10**300),  # several hundred digits
    # Past 4,300 digits even str() of an int raises (built lazily: repr would raise too).
    st.integers(min_value=4301, max_value=5000).map(lambda digits: -(10**digits)),
    st.sampled_from([1e308, -1e308, 5e-324, 2**1023 * 1.5]),
)
# The numbers a sender can put on the wire: integers of any size a parser reads (orjson turns
# one past about 309 digits into infinity and refuses it), floats.
wire_numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _wire(value: object) -> bytes:
    """JSON as a sender writes it: the standard library, which writes integers of any size."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


any_numbers = st.one_of(
    st.integers(), huge_numbers, st.floats(allow_nan=False, allow_infinity=False)
)


def _json(text, numbers):
    scalars = st.one_of(st.none(), st.booleans(), numbers, text)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=12,
    )


def _nested(depth: int, leaf):
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


any_json = _json(any_text, any_numbers)
wire_json = _json(wire_text, wire_numbers)
deep_json = st.builds(_nested, st.integers(min_value=200, max_value=900), any_json)
any_value = st.one_of(any_json, deep_json)
any_object = st.dictionaries(any_text, any_json, max_size=5)

names = st.sampled_from([e.name for e in EVENT_TYPES])
name_spellings = st.one_of(names, names.map(str.lower), names.map(str.upper), any_text)
object_types = st.sampled_from([*sorted(CHANNEL_LABELS), "customer"])


def _reference_metrics() -> list[str]:
    return sorted({case.metric for case in all_webhook_cases()})


webhook_metrics = st.sampled_from(_reference_metrics())
iso_moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.none()
    | st.just(UTC)
    | st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
).map(datetime.isoformat)


def _envelopes(json_values, text, numbers):
    """Webhook envelopes whose fields are each right, wrong or missing."""
    identifiers = (
        st.fixed_dictionaries(
            {}, optional={"id": json_values, "email": json_values, "cio_id": json_values}
        )
        | json_values
    )
    data = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "identifiers": identifiers,
                **{
                    key: json_values
                    for key in (
                        "customer_id",
                        "delivery_id",
                        "recipient",
                        "email_address",
                        "campaign_id",
                        "journey_id",
                        "recipients",
                        "subject",
                    )
                },
            },
        ),
        json_values,
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.one_of(text, json_values),
            "object_type": st.one_of(object_types, json_values),
            "object_type_type": st.one_of(object_types, json_values),
            "metric": st.one_of(webhook_metrics, json_values),
            "timestamp": st.one_of(
                st.integers(min_value=-(10**12), max_value=10**12), numbers, json_values
            ),
            "data": data,
        },
    )


envelopes = _envelopes(any_json, any_text, st.one_of(st.floats(), huge_numbers)) | _envelopes(
    st.one_of(any_json, deep_json), any_text, st.floats()
)

track_calls = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.just("track"), st.sampled_from(["identify", "page"]), any_json),
        "event": st.one_of(name_spellings, any_json),
        "userId": st.one_of(any_text, st.integers(), huge_numbers, any_json),
        "anonymousId": st.one_of(any_text, st.integers(), any_json),
        "messageId": st.one_of(any_text, st.text(min_size=190, max_size=230), any_json),
        "timestamp": st.one_of(iso_moments, any_json),
        "originalTimestamp": st.one_of(iso_moments, any_json),
        "sentAt": st.one_of(iso_moments, any_json),
        "context": st.one_of(any_object, any_value),
        "properties": st.one_of(any_object, any_value),
        "integrations": st.one_of(any_object, any_json),
    },
)
batch_sent_at = st.none() | st.datetimes(timezones=st.just(UTC))

track_events = st.fixed_dictionaries(
    {},
    optional={
        "messageId": st.one_of(any_text, st.text(min_size=1, max_size=230), any_json),
        "userId": st.one_of(any_text, any_json),
        "anonymousId": st.one_of(any_text, any_json),
        "timestamp": st.one_of(iso_moments, any_json),
        "originalTimestamp": st.one_of(iso_moments, any_json),
        "sentAt": st.one_of(iso_moments, any_json),
        "context": st.one_of(any_object, any_value),
        "properties": st.one_of(any_object, any_value),
    },
)


id_text = safe_text.filter(lambda s: s.strip() and len(s.strip()) <= MAX_ID_LENGTH)
message_ids = safe_text.filter(lambda s: s.strip() and len(s) <= MAX_MESSAGE_ID_LENGTH)
safe_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        safe_text,
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(safe_text, children, max_size=3)
    ),
    max_leaves=8,
)
people = st.builds(
    Person,
    id=st.none() | id_text,
    email=st.none() | st.emails(),
    cio_id=st.none() | st.text("0123456789abcdef", min_size=12, max_size=12),
    customer_id=st.just("") | id_text,
)


def _mutate(draw, value: dict, junk: dict) -> None:
    """Remove some fields of a valid value or replace them with junk, in place: most inputs
    are nearly right, and the edge between right and wrong is where mapping bugs hide."""
    for key, strategy in junk.items():
        # 0 keeps the field, so examples shrink towards the valid value.
        roll = draw(st.integers(min_value=0, max_value=19))
        if roll == 19:
            value.pop(key, None)
        elif roll == 18:
            value[key] = draw(strategy)


def _webhook_junk(text, json_values, values, numbers) -> tuple[dict, dict, dict]:
    """What may replace the fields of an envelope, of its data and of its identifiers."""
    envelope = {
        "event_id": st.one_of(text, st.text(min_size=199, max_size=202), json_values),
        "object_type": st.one_of(object_types, json_values),
        "object_type_type": st.one_of(object_types, json_values),
        "metric": st.one_of(webhook_metrics, json_values),
        "timestamp": st.one_of(numbers, json_values),
        "data": values,
    }
    data_keys = (
        "customer_id",
        "delivery_id",
        "recipient",
        "email_address",
        "campaign_id",
        "journey_id",
        "recipients",
        "subject",
        "identifiers",
    )
    data = {key: st.one_of(text, values) for key in data_keys}
    identifiers = {key: st.one_of(text, json_values) for key in ("id", "email", "cio_id")}
    return envelope, data, identifiers


@st.composite
def near_valid_webhooks(draw, wire: bool = False):
    """A realistic payload with some fields missing or wrong; ``wire`` keeps to what a JSON
    body parsed by orjson can hold (no lone surrogates, 64-bit integers, modest nesting)."""
    if wire:
        junk = _webhook_junk(wire_text, wire_json, wire_json, wire_numbers)
    else:
        junk = _webhook_junk(any_text, any_json, any_value, st.one_of(st.floats(), huge_numbers))
    case = draw(st.sampled_from(all_webhook_cases()))
    payload = webhook_payload(
        case.object_type,
        case.metric,
        parent=case.parent,
        person=draw(people),
        event_id=f"prop-{uuid.uuid4().hex}" if wire else draw(message_ids),
    ).payload
    envelope_junk, data_junk, identifiers_junk = junk
    _mutate(draw, payload["data"]["identifiers"], identifiers_junk)
    _mutate(draw, payload["data"], data_junk)
    _mutate(draw, payload, envelope_junk)
    return payload


_CALL_JUNK = {
    "type": st.one_of(st.sampled_from(["identify", " track "]), any_json),
    "event": st.one_of(name_spellings, any_json),
    "userId": st.one_of(any_text, st.integers(), huge_numbers, any_json),
    "anonymousId": st.one_of(any_text, st.integers(), any_json),
    "messageId": st.one_of(any_text, st.text(min_size=199, max_size=202), any_json),
    "timestamp": st.one_of(iso_moments, any_json),
    "originalTimestamp": st.one_of(iso_moments, any_json),
    "sentAt": st.one_of(iso_moments, any_json),
    "context": st.one_of(any_object, any_value),
    "properties": st.one_of(any_object, any_value),
    "integrations": st.one_of(any_object, any_json),
}


@st.composite
def near_valid_calls(draw):
    call = {
        "type": "track",
        "event": draw(name_spellings.filter(event_type_by_name)),
        "userId": draw(st.one_of(id_text, st.integers(min_value=0, max_value=2**64 - 1))),
        "messageId": draw(message_ids),
        "properties": draw(st.dictionaries(safe_text, safe_json, max_size=4)),
        "context": draw(st.dictionaries(safe_text, safe_json, max_size=3)),
    }
    _mutate(draw, call, _CALL_JUNK)
    return call


@st.composite
def near_valid_events(draw):
    event = {
        "type": "track",
        "event": draw(names),
        "userId": draw(id_text),
        "anonymousId": draw(st.none() | st.emails()),
        "messageId": draw(message_ids),
        "timestamp": draw(iso_moments),
        "properties": draw(st.dictionaries(safe_text, safe_json, max_size=4)),
        "context": {"traits": {"email": draw(st.emails())}},
    }
    _mutate(
        draw,
        event,
        {
            key: _CALL_JUNK[key]
            for key in (
                "userId",
                "anonymousId",
                "messageId",
                "timestamp",
                "originalTimestamp",
                "sentAt",
                "context",
                "properties",
            )
        },
    )
    return event


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _assert_storable(row: EventRow) -> None:
    """What PostgreSQL needs of the typed columns: text without NUL or lone surrogates, within
    its column, 64-bit integers, aware timestamps."""
    limits = {
        "message_id": MAX_MESSAGE_ID_LENGTH,
        "user_id": MAX_ID_LENGTH,
        "anonymous_id": MAX_ID_LENGTH,
        "email": MAX_EMAIL_LENGTH,
        "delivery_id": MAX_DELIVERY_ID_LENGTH,
        "journey_id": MAX_JOURNEY_ID_LENGTH,
    }
    assert row.message_id
    for column, limit in limits.items():
        value = getattr(row, column)
        if value is not None:
            assert isinstance(value, str) and len(value) <= limit, column
            assert "\x00" not in value
            value.encode()  # raises on a lone surrogate
    for column in (
        "campaign_id",
        "broadcast_id",
        "newsletter_id",
        "transactional_message_id",
        "action_id",
        "content_id",
        "trigger_id",
    ):
        value = getattr(row, column)
        assert value is None or (type(value) is int and -(2**63) <= value < 2**63), column
    assert row.timestamp.tzinfo is not None
    for text in (row.properties_json, row.context_json):
        # Valid JSON for the jsonb columns: the standard library reads integers of any size
        # (orjson turns those beyond a double into an error), and NaN or Infinity is refused.
        json.loads(text, parse_constant=_not_json)
        assert "\\u0000" not in text.replace("\\\\", "")


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def _raw(value) -> str:
    # What the caller would store as received (the stdlib escapes anything orjson refuses).
    try:
        return json.dumps(value)
    except ValueError:  # an integer of more than 4,300 digits: no JSON parser produces one
        return "{}"


# ------------------------------------------------------------------------------------------
# Malformed input: MappingError or a storable row, nothing else
# ------------------------------------------------------------------------------------------


@PURE
@given(payload=st.one_of(near_valid_webhooks(), near_valid_webhooks(), envelopes, any_value))
@example(
    payload={
        "event_id": "e",
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1,
        "data": {"identifiers": {"id": 10**5000}},
    }
)
@example(
    payload={
        "event_id": "e",
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1,
        "data": {"campaign_id": "²", "journey_id": "j" * 101},
    }
)
def test_any_webhook_payload_maps_or_raises_mapping_error(payload):
    try:
        event_type, event = track_event_from_webhook(payload, sent_at=RECEIVED_AT)
    except MappingError as error:
        assert str(error)
        outcome("refused")
        return
    try:
        row = row_from_track_event(
            event_type, event, received_at=RECEIVED_AT, raw_json=_raw(payload)
        )
    except MappingError as error:
        assert str(error)
        outcome("refused")
        return
    _assert_storable(row)
    outcome("stored")


@PURE
@given(
    call=st.one_of(near_valid_calls(), near_valid_calls(), track_calls, any_value),
    context=st.none() | st.dictionaries(safe_text, safe_json, max_size=3) | any_object,
    integrations=st.none() | st.dictionaries(safe_text, safe_json, max_size=3) | any_object,
    sent_at=batch_sent_at,
)
@example(
    call={
        "event": "Email Sent",
        "userId": "1",
        "originalTimestamp": "0001-01-01T00:00:00",
        "sentAt": "9999-12-31T00:00:00",
    },
    context=None,
    integrations=None,
    sent_at=None,
)
def test_any_track_call_maps_or_raises_mapping_error(call, context, integrations, sent_at):
    try:
        event_type, event = track_event_from_call(
            call,
            received_at=RECEIVED_AT,
            batch_context=context,
            batch_integrations=integrations,
            batch_sent_at=sent_at,
        )
    except MappingError as error:
        assert str(error)
        outcome("refused")
        return
    assert event["event"] == event_type.name
    assert event.get("userId") or event.get("anonymousId")
    try:
        row = row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=_raw(call))
    except MappingError as error:
        assert str(error)
        outcome("refused")
        return
    _assert_storable(row)
    outcome("stored")


def _row_in_two_steps(call, **batch) -> EventRow | str:
    try:
        event_type, event = track_event_from_call(call, received_at=RECEIVED_AT, **batch)
        return row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=_raw(call))
    except MappingError as error:
        return str(error)


def _row_in_one_step(call, **batch) -> EventRow | str:
    try:
        event_type, row = row_from_call(call, received_at=RECEIVED_AT, raw_json=_raw(call), **batch)
    except MappingError as error:
        return str(error)
    assert row.event == event_type.name
    return row


@PURE
@given(
    call=st.one_of(near_valid_calls(), near_valid_calls(), track_calls, any_value),
    context=st.none() | st.dictionaries(safe_text, safe_json, max_size=3) | any_object,
    integrations=st.none() | st.dictionaries(safe_text, safe_json, max_size=3) | any_object,
    sent_at=batch_sent_at
    | st.datetimes(
        timezones=st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    ),
)
@example(
    call={
        "event": "Email Sent",
        "userId": "1",
        "originalTimestamp": "0001-01-01T00:00:00",
        "sentAt": "9999-12-31T00:00:00",
    },
    context=None,
    integrations=None,
    sent_at=None,
)
@example(
    call={"event": "Email Sent", "userId": "1", "timestamp": "2024-05-01T12:00:00.123999+05:30"},
    context=None,
    integrations={"All": False},
    sent_at=datetime(2024, 5, 1, 12, 0, 0, 999, tzinfo=UTC),
)
def test_a_call_maps_to_the_same_row_in_one_step_as_through_the_event(
    call, context, integrations, sent_at
):
    # The tracking API stores row_from_call's row; it must be exactly the row (or the
    # refusal) of the two documented steps, timestamps cut to the millisecond included.
    batch = {"batch_context": context, "batch_integrations": integrations, "batch_sent_at": sent_at}
    if isinstance(call, dict) and call.get("messageId") is None:
        call = {**call, "messageId": "server-assigned-in-the-test"}
    one, two = _row_in_one_step(call, **batch), _row_in_two_steps(call, **batch)
    if isinstance(one, EventRow) and isinstance(two, EventRow) and one.message_id != two.message_id:
        # Both assigned a fresh id (the call's messageId was blank): only that may differ.
        assert one.message_id.startswith("ms-") and two.message_id.startswith("ms-")
        one.message_id = two.message_id
    assert one == two
    outcome("refused" if isinstance(one, str) else "stored")


@PURE
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    event=st.one_of(near_valid_events(), near_valid_events(), track_events, any_value),
    raw=any_text,
)
def test_any_track_event_becomes_a_storable_row_or_raises_mapping_error(event_type, event, raw):
    try:
        row = row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=raw)
    except MappingError as error:
        assert str(error)
        outcome("refused")
        return
    _assert_storable(row)
    outcome("stored")
    assert (row.event, row.channel, row.metric) == (
        event_type.name,
        event_type.channel.value,
        event_type.metric.value,
    )


# ------------------------------------------------------------------------------------------
# Valid input: always mapped, always the same way
# ------------------------------------------------------------------------------------------


@PURE
@given(
    case=st.sampled_from(all_webhook_cases()),
    person=people,
    event_id=message_ids,
    timestamp=st.integers(min_value=0, max_value=4_102_444_800),
    extra=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12).map(lambda k: "x_" + k),
        safe_json,
        max_size=3,
    ),
)
def test_valid_webhook_payloads_always_map_the_same_way(case, person, event_id, timestamp, extra):
    rebuilt = webhook_payload(
        case.object_type,
        case.metric,
        parent=case.parent,
        person=person,
        event_id=event_id,
        timestamp=timestamp,
    )
    payload = rebuilt.payload
    payload["data"].update(extra)
    raw = orjson.dumps(payload).decode()
    first = track_event_from_webhook(payload, sent_at=RECEIVED_AT)
    second = track_event_from_webhook(orjson.loads(raw), sent_at=RECEIVED_AT)
    assert first == second
    event_type, event = first
    expected = expected_event(case.object_type, case.metric, has_delivery=case.parent is not None)
    assert event_type.name == event["event"] == expected.name
    assert event["messageId"] == event_id.strip()
    assert all(event["properties"][key] == value for key, value in extra.items())
    row = row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=raw)
    assert row == row_from_track_event(event_type, event, received_at=RECEIVED_AT, raw_json=raw)
    _assert_storable(row)
    assert row.timestamp == datetime.fromtimestamp(timestamp, tz=UTC)


@PURE
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    spelling=st.sampled_from([str, str.lower, str.upper]),
    user_id=st.one_of(id_text, st.integers(min_value=0, max_value=2**64 - 1)),
    message_id=message_ids,
    moment=iso_moments.filter(lambda s: "0001-01-01" not in s and "9999-12-31" not in s),
    properties=st.dictionaries(safe_text, safe_json, max_size=4),
    context=st.dictionaries(safe_text, safe_json, max_size=3),
    batch_context=st.none() | st.dictionaries(safe_text, safe_json, max_size=3),
)
def test_valid_track_calls_always_map_the_same_way(
    event_type, spelling, user_id, message_id, moment, properties, context, batch_context
):
    call = {
        "type": "track",
        "event": spelling(event_type.name),
        "userId": user_id,
        "messageId": message_id,
        "timestamp": moment,
        "properties": properties,
        "context": context,
    }
    raw = orjson.dumps(call).decode()
    first = track_event_from_call(call, received_at=RECEIVED_AT, batch_context=batch_context)
    second = track_event_from_call(
        orjson.loads(raw), received_at=RECEIVED_AT, batch_context=batch_context
    )
    assert first == second
    mapped_type, event = first
    assert mapped_type is event_type
    assert event["properties"] == properties
    assert event["userId"] == str(user_id).strip()
    row = row_from_track_event(mapped_type, event, received_at=RECEIVED_AT, raw_json=raw)
    _assert_storable(row)
    assert row == row_from_track_event(mapped_type, event, received_at=RECEIVED_AT, raw_json=raw)


# ------------------------------------------------------------------------------------------
# Endpoints: no 5xx, no valid event lost
# ------------------------------------------------------------------------------------------


def _valid_call(index: int, prefix: str, draw) -> dict:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    call = {
        "type": "track",
        "event": draw(st.sampled_from([event_type.name, event_type.name.lower()])),
        "userId": draw(st.one_of(id_text, st.integers(0, 10**12))),
        "messageId": f"{prefix}-{index}",
        "properties": draw(st.dictionaries(safe_text, safe_json, max_size=3)),
        "context": draw(st.dictionaries(safe_text, safe_json, max_size=2)),
    }
    if draw(st.booleans()):
        call["originalTimestamp"] = draw(
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))
        ).isoformat()
    return call


# Calls that must be rejected, each for a reason the mapping names.
_INVALID = [
    lambda call: call.update(event="Order Completed"),
    lambda call: call.pop("userId"),
    lambda call: call.update(messageId="m" * (MAX_MESSAGE_ID_LENGTH + 1)),
    lambda call: call.update(properties={"note": "a\x00b"}),
    lambda call: call.update(properties=["not", "an", "object"]),
    lambda call: call.update(timestamp="next tuesday"),
    lambda call: call.update(userId="u" * (MAX_ID_LENGTH + 1)),
    lambda call: call.update(event=None),
]


@st.composite
def batches(draw):
    prefix = f"prop-{uuid.uuid4().hex}"
    items, valid_ids, invalid_indexes = [], [], []
    for index in range(draw(st.integers(min_value=1, max_value=12))):
        kind = draw(st.sampled_from(["valid", "valid", "invalid", "junk", "other"]))
        if kind == "junk":
            items.append(
                draw(st.one_of(st.dictionaries(wire_text, wire_json, max_size=6), wire_json))
            )
            continue
        if kind == "other":
            items.append(
                {
                    "type": draw(st.sampled_from(["identify", "page", "screen", "group", "alias"])),
                    "userId": "42",
                }
            )
            continue
        call = _valid_call(index, prefix, draw)
        if kind == "invalid":
            draw(st.sampled_from(_INVALID))(call)
            invalid_indexes.append(index)
        elif call["messageId"] not in valid_ids:
            valid_ids.append(call["messageId"])
        items.append(call)
    body = {"batch": items}
    if draw(st.booleans()):
        # Storable: a NUL here would reach every call (see the test below).
        body["context"] = draw(st.dictionaries(safe_text, safe_json, max_size=3))
    if draw(st.booleans()):
        body["sentAt"] = "2024-05-01T12:00:00Z"
    return body, valid_ids, invalid_indexes


# Production serves the ingest endpoints through the fast path; the full stack must agree.
routes = st.sampled_from(["full stack", "fast path"])


def route_client(route: str) -> Client:
    client = make_client(route)
    client.raise_request_exception = False  # a 500 is an answer to assert on, not a crash
    return client


@ENDPOINT
@given(case=batches(), route=routes)
def test_batches_never_5xx_and_store_every_valid_call(source, case, route):
    body, valid_ids, invalid_indexes = case
    client = route_client(route)
    response = client.post(
        "/v1/batch",
        _wire(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
    )
    assert response.status_code < 500, response.content
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["received"] == len(body["batch"])
    assert Event.objects.filter(message_id__in=valid_ids).count() == len(valid_ids)
    rejected = {item["index"] for item in result["rejected"]}
    assert set(invalid_indexes) <= rejected
    for index in invalid_indexes:
        message_id = body["batch"][index].get("messageId")
        if isinstance(message_id, str):
            assert not Event.objects.filter(message_id=message_id).exists()
    valid_indexes = {
        i
        for i, c in enumerate(body["batch"])
        if isinstance(c, dict) and c.get("messageId") in valid_ids
    }
    assert not rejected & valid_indexes
    stored = Event.objects.filter(message_id__in=valid_ids)
    for row in stored.values("message_id", "event"):
        call = next(
            c
            for c in body["batch"]
            if isinstance(c, dict) and c.get("messageId") == row["message_id"]
        )
        assert row["event"] == event_type_by_name(call["event"]).name


@ENDPOINT
@given(
    call=st.one_of(near_valid_calls(), near_valid_calls(), any_object),
    strict=st.booleans(),
    route=routes,
)
def test_any_single_track_call_never_5xx_and_is_stored_when_accepted(source, call, strict, route):
    # Examples share the test's transaction: a fresh id tells this call's row from earlier ones.
    if isinstance(call, dict) and isinstance(call.get("messageId"), str):
        call = {**call, "messageId": f"{uuid.uuid4().hex}-{call['messageId']}"}
    try:
        body = _wire(call)
    except (ValueError, RecursionError):
        # Not JSON a sender could send (a lone surrogate, an integer of thousands of digits,
        # nesting past Python's limit): no request to make.
        assume(False)
    headers = {"HTTP_X_STRICT_MODE": "1"} if strict else {}
    response = route_client(route).post(
        "/v1/track",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
        **headers,
    )
    assert response.status_code in (200, 400, 413), response.content
    answer = response.json()
    message_id = call.get("messageId") if isinstance(call, dict) else None
    if not isinstance(message_id, str) or "\x00" in message_id:
        message_id = None  # no row can hold it (the call is refused), nor can a query ask for it
    if response.status_code == 413 or "error" in answer:
        outcome("refused whole")
        return
    if answer["rejected"]:
        # Named either way; a 400 only in strict mode, and nothing stored.
        assert response.status_code == (400 if strict else 200)
        assert answer["stored"] == 0
        if message_id is not None:
            assert not Event.objects.filter(message_id=message_id.strip()).exists()
        outcome("rejected")
    else:
        assert response.status_code == 200
        assert answer["stored"] + answer["duplicates"] + sum(answer["ignored"].values()) == 1
        if answer["stored"] and message_id is not None:
            assert Event.objects.filter(message_id=message_id.strip()).exists()
        outcome("accepted")


# Bodies as they may arrive off the wire: random bytes, truncated JSON, gzip of either, gzip
# cut short.
_wire_bodies = st.one_of(
    st.binary(max_size=200),
    wire_json.map(_wire),
    wire_json.map(lambda value: _wire(value)[:-1]),
)


@ENDPOINT
@given(
    data=_wire_bodies,
    encoding=st.sampled_from(["", "gzip", "gzip-truncated", "br"]),
    target=st.sampled_from(["/v1/track", "/v1/batch", "/v1/identify", "webhook"]),
    route=routes,
)
def test_any_body_off_the_wire_never_5xx(source, data, encoding, target, route):
    body = data
    headers: dict[str, str] = {}
    if encoding.startswith("gzip"):
        body = gzip.compress(data)
        body = body[: len(body) // 2] if encoding == "gzip-truncated" else body
        headers["Content-Encoding"] = "gzip"
    elif encoding:
        headers["Content-Encoding"] = encoding
    client = route_client(route)
    if target == "webhook":
        path = f"/webhooks/customerio/{source.source.slug}"
        headers |= cio_signature_headers(source.secret, body)
    else:
        path = target
        headers["Authorization"] = basic_auth(source.write_key)
    response = client.post(path, body, content_type="application/json", headers=headers)
    assert response.status_code in (200, 400, 413, 415), response.content
    assert response["Content-Type"].startswith("application/json")
    if response.status_code != 200:
        assert response.json()["error"]
    outcome(str(response.status_code))


def _signed_post(client, source, body: bytes):
    return client.post(
        f"/webhooks/customerio/{source.source.slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(source.secret, body),
    )


@ENDPOINT
@given(
    payload=st.one_of(
        near_valid_webhooks(wire=True),
        near_valid_webhooks(wire=True),
        _envelopes(wire_json, wire_text, wire_numbers),
        wire_json,
    ),
    route=routes,
)
def test_any_signed_webhook_never_5xx(source, payload, route):
    body = _wire(payload)
    response = _signed_post(route_client(route), source, body)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert Event.objects.filter(message_id=response.json()["messageId"]).exists()
        outcome("stored")
    else:
        assert response.json()["error"]
        outcome("refused")


@ENDPOINT
@given(case=st.sampled_from(all_webhook_cases()), person=people)
def test_valid_signed_webhooks_are_always_stored(source, case, person):
    event_id = f"prop-{uuid.uuid4().hex}"
    payload = webhook_payload(
        case.object_type, case.metric, parent=case.parent, person=person, event_id=event_id
    ).payload
    response = _signed_post(Client(raise_request_exception=False), source, _wire(payload))
    assert response.status_code == 200, response.content
    expected = expected_event(case.object_type, case.metric, has_delivery=case.parent is not None)
    stored = Event.objects.get(message_id=event_id)
    assert (stored.event, stored.channel, stored.metric) == (
        expected.name,
        expected.channel,
        expected.metric,
    )


def test_a_nul_in_the_batch_context_rejects_each_call_clearly(source):
    # The batch context becomes part of every call, so none of them can be stored.
    body = {
        "batch": [
            {"event": "Email Sent", "userId": "1", "messageId": f"nul-ctx-{i}"} for i in (0, 1)
        ],
        "context": {"library": {"name": "a\x00b"}},
    }
    response = Client(raise_request_exception=False).post(
        "/v1/batch",
        _wire(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
    )
    assert response.status_code == 200, response.content
    rejected = response.json()["rejected"]
    assert [r["index"] for r in rejected] == [0, 1]
    assert all("NUL" in r["error"] for r in rejected)
    assert not Event.objects.filter(message_id__startswith="nul-ctx-").exists()


def test_a_lone_surrogate_fails_its_request_clearly_not_with_5xx(source):
    body = b'{"batch": [{"event": "Email Sent", "userId": "\\ud800", "messageId": "s-1"}]}'
    response = Client(raise_request_exception=False).post(
        "/v1/batch",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


# orjson parses up to 1,024 levels but serialises only 254; ingest serialises each call and
# webhook (the copy kept as received) outside the errors it turns into rejections.
@pytest.mark.parametrize("depth", [255, 600])
def test_deeply_nested_calls_are_rejected_not_5xx(source, depth):
    valid = {"event": "Email Sent", "userId": "1", "messageId": f"deep-ok-{depth}"}
    deep = {
        "event": "Email Sent",
        "userId": "1",
        "messageId": f"deep-{depth}",
        "properties": {"x": _nested(depth, 1)},
    }
    body = json.dumps({"batch": [valid, deep]}).encode()
    response = Client(raise_request_exception=False).post(
        "/v1/batch",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(source.write_key),
    )
    assert response.status_code == 200, response.status_code
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert Event.objects.filter(message_id=f"deep-ok-{depth}").exists()


@pytest.mark.parametrize("depth", [255, 600])
def test_a_deeply_nested_webhook_is_rejected_not_5xx(source, depth):
    payload = webhook_payload("email", "opened", event_id=f"deep-hook-{depth}").payload
    payload["data"]["x"] = _nested(depth, 1)
    response = _signed_post(
        Client(raise_request_exception=False), source, json.dumps(payload).encode()
    )
    assert response.status_code == 400, response.status_code
    assert not Event.objects.filter(message_id=f"deep-hook-{depth}").exists()
