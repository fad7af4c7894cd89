"""Pure functions: incoming payloads -> semantic track events -> typed rows.

Two inputs reach the same storage format:

* Customer.io reporting-webhook payloads (``track_event_from_webhook``), mapped to the
  semantic track event exactly as Customer.io's own "Journeys Message Metrics" source does;
* track calls from Segment-compatible SDKs (``track_event_from_call``), already in that format,
  normalised (batch context merged, timestamps corrected for clock skew).

``row_from_track_event`` then extracts the typed columns the reads need; ``row_from_call`` gives
the same row straight from a track call (the tracking API's hot path). Nothing here touches
the database, so it can be tested, fuzzed and benchmarked on its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from metrics_source.ingest import exact_json
from metrics_source.ingest.catalog import (
    Channel,
    EventType,
    event_type_by_name,
    event_type_for_webhook,
)

MAX_MESSAGE_ID_LENGTH = 200
# The user_id and anonymous_id columns. Longer ids are refused, never truncated: two people
# whose ids share a prefix must not become one.
MAX_ID_LENGTH = 200
# Typed string columns that only mirror a property: a longer value leaves the column NULL
# and stays in the properties.
MAX_DELIVERY_ID_LENGTH = 200
MAX_JOURNEY_ID_LENGTH = 100
MAX_EMAIL_LENGTH = 320
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
# Integers with more bits than this have more digits than any id column holds; str() of much
# larger ones is slow and, past 4,300 digits, raises.
_MAX_ID_INT_BITS = 1024


class MappingError(ValueError):
    """The payload cannot become a metric event; the message says why, for the sender."""


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Customer.io writes its timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean_id(value: Any) -> str | None:
    """An identifier as a non-empty string (SDKs send numbers too), or None."""
    if isinstance(value, str):
        return value.strip() or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value.bit_length() <= _MAX_ID_INT_BITS else None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _int_id(value: Any) -> int | None:
    """A typed integer id column; values that are not 64-bit integers stay only in properties.

    Strings of ASCII digits count (some senders quote ids); other digits (``"²"``, Arabic-Indic
    numerals) do not, since ``str.isdigit`` accepts characters ``int`` cannot read.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _BIGINT_MIN <= value <= _BIGINT_MAX else None
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        number = int(value)
        return number if number <= _BIGINT_MAX else None
    return None


def _column_text(value: Any, limit: int) -> str | None:
    """A string id for a typed column, or None when absent or too long for the column."""
    text = _clean_id(value)
    return text if text is not None and len(text) <= limit else None


# --------------------------------------------------------------------------------------
# Customer.io reporting webhooks
# --------------------------------------------------------------------------------------


def track_event_from_webhook(
    payload: Any, *, sent_at: datetime | None = None
) -> tuple[EventType, dict[str, Any]]:
    """Map one reporting-webhook payload to (event type, semantic track event).

    Strict on the envelope (event_id, object_type, metric, timestamp, data); lenient on the
    fields under ``data``, which Customer.io itself does not always send.
    """
    if not isinstance(payload, dict):
        raise MappingError("a reporting webhook payload must be a JSON object")
    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise MappingError("event_id is required and must be a non-empty string")
    if len(event_id) > MAX_MESSAGE_ID_LENGTH:
        raise MappingError(f"event_id is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    # Customer.io's published preferences-changed schema spells the field object_type_type.
    object_type = payload.get("object_type") or payload.get("object_type_type")
    metric = payload.get("metric")
    if not isinstance(object_type, str) or not isinstance(metric, str):
        raise MappingError("object_type and metric are required strings")
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise MappingError("timestamp is required and must be unix seconds (a number)")
    try:
        happened_at = datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MappingError("timestamp is out of range") from None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MappingError("data is required and must be an object")

    # NUL cannot be stored in PostgreSQL's text or jsonb: under data it becomes U+FFFD, and the
    # payload as received keeps it (escaped). Refusing it would stall the source's webhooks.
    if _holds_nul(data):
        data = _without_nul(data)
    delivery_id = _clean_id(data.get("delivery_id"))
    event_type = event_type_for_webhook(object_type, metric, has_delivery=delivery_id is not None)
    if event_type is None:
        raise MappingError(f"unknown object_type/metric pair: {object_type!r}/{metric!r}")

    identifiers = data.get("identifiers")
    identifiers = identifiers if isinstance(identifiers, dict) else {}
    # An id too long for its column counts as absent here (it stays in the payload as
    # received): a webhook is never refused for its person, see below.
    user_id = _column_text(identifiers.get("id"), MAX_ID_LENGTH) or _column_text(
        data.get("customer_id"), MAX_ID_LENGTH
    )
    email = _clean_id(identifiers.get("email")) or _clean_id(data.get("email_address"))
    recipient = data.get("recipient")
    # Only an email's recipient is an address; a webhook's is a URL, a Slack one a channel.
    if email is None and object_type == "email" and isinstance(recipient, str):
        email = recipient.strip() or None
    cio_id = _clean_id(identifiers.get("cio_id"))
    # The person's email stands in for a missing id, as in multi-identifier workspaces; with
    # neither (or an email too long for the column), the Customer.io id still ties the event
    # to a person. A webhook is never refused for its person: Customer.io would retry it for
    # days and hold back every later one.
    anonymous_id = None
    if not user_id:
        anonymous_id = next(
            (known for known in (email, cio_id) if known and len(known) <= MAX_ID_LENGTH), None
        )

    properties = {key: value for key, value in data.items() if key != "identifiers"}
    if not _clean_id(properties.get("customer_id")) and user_id:
        properties["customer_id"] = user_id
    if event_type.channel is Channel.SUBSCRIPTION:
        # Person-level changes keep the channel that triggered them ("customer" when none).
        properties.setdefault("object_type", object_type)
    if user_id:
        properties["userId"] = user_id

    traits: dict[str, Any] = {}
    if email:
        traits["email"] = email
    if cio_id:
        traits["cio_id"] = cio_id

    event: dict[str, Any] = {"type": "track", "event": event_type.name}
    if user_id:
        event["userId"] = user_id
    if anonymous_id:
        event["anonymousId"] = anonymous_id
    event["messageId"] = event_id.strip()
    event["timestamp"] = iso(happened_at)
    event["originalTimestamp"] = iso(happened_at)
    if sent_at is not None:
        event["sentAt"] = iso(sent_at)
    event["context"] = {"traits": traits}
    event["properties"] = properties
    return event_type, event


def _holds_nul(data: dict[str, Any]) -> bool:
    try:
        text = exact_json.dumps(data)
    except orjson.JSONEncodeError:
        return False  # not storable as JSON at all: refused below, with the reason
    return _holds_escaped_nul(text.decode())


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def looks_like_webhook_payload(payload: Any) -> bool:
    """True for a reporting-webhook payload, False for a track call (used by bulk import)."""
    return isinstance(payload, dict) and "event_id" in payload and "metric" in payload


# --------------------------------------------------------------------------------------
# Segment-compatible track calls
# --------------------------------------------------------------------------------------


class TrackCall(BaseModel):
    """One track call as SDKs send it. Plain pydantic (not ninja.Schema): it is validated
    once per event on the hot path, where ninja's extra machinery costs several times more."""

    # No str_strip_whitespace: it would strip the keys of properties and context too, and
    # "plan" and "plan " would collapse into one. The few fields that are trimmed say so.
    model_config = ConfigDict(extra="allow")

    type: str = "track"
    event: str
    userId: str | int | None = None
    anonymousId: str | int | None = None
    messageId: str | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None

    @field_validator("messageId")
    @classmethod
    def _message_id_length(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if len(value) > MAX_MESSAGE_ID_LENGTH:
            raise ValueError(f"must be at most {MAX_MESSAGE_ID_LENGTH} characters")
        return value or None

    @field_validator("timestamp", "originalTimestamp", "sentAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A timestamp without a zone is read as UTC, as Segment does.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "event"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(slots=True)
class _Call:
    """A validated, normalised track call: what both the event dict and the row are made of."""

    event_type: EventType
    user_id: str | None
    anonymous_id: str | None
    message_id: str
    # In UTC; the row keeps them to the millisecond, as the event's ISO strings do.
    timestamp: datetime
    original_timestamp: datetime
    sent_at: datetime | None
    context: dict[str, Any]
    properties: dict[str, Any]
    integrations: dict[str, Any] | None


def _normalised_call(
    call: dict[str, Any],
    *,
    received_at: datetime,
    batch_context: dict[str, Any] | None,
    batch_integrations: dict[str, Any] | None,
    batch_sent_at: datetime | None,
) -> _Call:
    try:
        parsed = TrackCall.model_validate(call)
    except ValidationError as error:
        raise MappingError(describe_validation_error(error)) from None
    if parsed.type != "track" and parsed.type.strip() != "track":
        raise MappingError(f"type must be 'track', got {parsed.type!r}")
    event_type = event_type_by_name(parsed.event)
    if event_type is None:
        raise MappingError(
            f"event {parsed.event!r} is not a message-activity event (see GET /api/catalog)"
        )
    user_id = _clean_id(parsed.userId)
    anonymous_id = _clean_id(parsed.anonymousId)
    if user_id is None and anonymous_id is None:
        raise MappingError("userId or anonymousId is required")

    sent_at = parsed.sentAt or batch_sent_at
    original = parsed.originalTimestamp
    timestamp = parsed.timestamp
    try:
        if timestamp is None:
            # Clock-skew correction, as Segment does: trust the server's clock for the offset.
            # Without sentAt there is no offset to correct: the client's time is the best known
            # (history sent or imported this way keeps its dates, not the day it arrived).
            if original is not None:
                timestamp = received_at - (sent_at - original) if sent_at else original
            else:
                timestamp = received_at
        if original is None:
            original = parsed.timestamp or timestamp
        # Most calls carry one timestamp that is both: convert it once.
        same = original is timestamp
        timestamp = _utc_ms(timestamp)
        original = timestamp if same else _utc_ms(original)
        sent_at = _utc_ms(sent_at) if sent_at is not None else None
    except OverflowError:
        # A valid datetime can still fall outside the calendar once corrected or made UTC.
        raise MappingError(
            "timestamp, originalTimestamp or sentAt is out of range (years 1 to 9999 in UTC)"
        ) from None

    context = parsed.context or {}
    integrations = parsed.integrations
    try:
        if batch_context:
            context = _deep_merge(batch_context, context)
        if batch_integrations:
            integrations = _deep_merge(batch_integrations, integrations or {})
    except RecursionError:
        # JSON parsers accept about 1,000 levels; nothing that deep can be stored anyway.
        raise MappingError("context or integrations is nested too deeply to merge") from None

    return _Call(
        event_type=event_type,
        user_id=user_id,
        anonymous_id=anonymous_id,
        message_id=parsed.messageId or f"ms-{uuid.uuid4()}",
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        context=context,
        properties=parsed.properties or {},
        integrations=integrations or None,
    )


def _utc_ms(moment: datetime) -> datetime:
    """The moment in UTC, cut to the millisecond: exactly what ``iso`` writes and
    ``datetime.fromisoformat`` reads back."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    extra = moment.microsecond % 1000
    return moment.replace(microsecond=moment.microsecond - extra) if extra else moment


def track_event_from_call(
    call: dict[str, Any],
    *,
    received_at: datetime,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
) -> tuple[EventType, dict[str, Any]]:
    """Validate and normalise one track call into (event type, semantic track event)."""
    normal = _normalised_call(
        call,
        received_at=received_at,
        batch_context=batch_context,
        batch_integrations=batch_integrations,
        batch_sent_at=batch_sent_at,
    )
    event: dict[str, Any] = {"type": "track", "event": normal.event_type.name}
    if normal.user_id:
        event["userId"] = normal.user_id
    if normal.anonymous_id:
        event["anonymousId"] = normal.anonymous_id
    event["messageId"] = normal.message_id
    event["timestamp"] = iso(normal.timestamp)
    event["originalTimestamp"] = iso(normal.original_timestamp)
    if normal.sent_at is not None:
        event["sentAt"] = iso(normal.sent_at)
    event["context"] = normal.context
    event["properties"] = normal.properties
    if normal.integrations:
        event["integrations"] = normal.integrations
    return normal.event_type, event


def row_from_call(
    call: dict[str, Any],
    *,
    received_at: datetime,
    raw_json: str,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
) -> tuple[EventType, EventRow]:
    """``row_from_track_event(*track_event_from_call(call))`` without the event dict in
    between: the tracking API's hot path skips writing ISO timestamps only to parse them
    back. Same row, same MappingError, checked in the same order."""
    normal = _normalised_call(
        call,
        received_at=received_at,
        batch_context=batch_context,
        batch_integrations=batch_integrations,
        batch_sent_at=batch_sent_at,
    )
    _storable_text("messageId", normal.message_id)
    user_id = _checked_identity("userId", normal.user_id)
    anonymous_id = _checked_identity("anonymousId", normal.anonymous_id)
    texts = _json_texts(raw_json, normal.properties, normal.context, normal.integrations)
    row = _row(
        normal.event_type,
        texts,
        message_id=normal.message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        properties=normal.properties,
        context=normal.context,
        timestamp=normal.timestamp,
        original_timestamp=normal.original_timestamp,
        sent_at=normal.sent_at,
        received_at=received_at,
    )
    return normal.event_type, row


# --------------------------------------------------------------------------------------
# Typed rows
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class EventRow:
    """One event ready to store: typed columns plus the JSON kept beside them."""

    message_id: str
    event: str
    channel: str
    metric: str
    semantic: bool
    user_id: str | None
    anonymous_id: str | None
    email: str | None
    delivery_id: str | None
    campaign_id: int | None
    broadcast_id: int | None
    newsletter_id: int | None
    transactional_message_id: int | None
    action_id: int | None
    journey_id: str | None
    content_id: int | None
    trigger_id: int | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties_json: str
    context_json: str
    raw_json: str
    # The call's integrations with the batch's merged in; None when there are none.
    integrations_json: str | None = None


# A JSON-escaped NUL that is not itself an escaped backslash: jsonb cannot hold it, so a track
# call with one in its properties or context is refused with a clear reason instead of failing
# the whole request. (The call as received is kept as text, where the escape is six plain
# characters; webhooks replace NUL before they get here.)
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _holds_escaped_nul(json_text: str) -> bool:
    return "\\u0000" in json_text and _ESCAPED_NUL.search(json_text) is not None


def _refuse_nul(*json_texts: str) -> None:
    if any(map(_holds_escaped_nul, json_texts)):
        raise MappingError("NUL characters (\\u0000) cannot be stored")


def _storable_text(name: str, value: str) -> None:
    """Refuse text PostgreSQL cannot hold: NUL, and lone surrogates (not valid UTF-8)."""
    if "\x00" in value:
        raise MappingError(f"{name}: NUL characters (\\u0000) cannot be stored")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise MappingError(f"{name} is not valid Unicode text") from None


def _identity(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError(f"{key} must be a string")
    return _checked_identity(key, value)


def _checked_identity(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_ID_LENGTH:
        raise MappingError(f"{key} is longer than {MAX_ID_LENGTH} characters")
    _storable_text(key, value)
    return value or None


def _object(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{key} must be an object")
    return value


def _moment(event: dict[str, Any], key: str) -> datetime:
    value = event.get(key)
    if not isinstance(value, str):
        raise MappingError(f"{key} must be an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(f"{key} is not an ISO 8601 timestamp") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _optional_moment(event: dict[str, Any], key: str) -> datetime | None:
    return None if event.get(key) is None else _moment(event, key)


def row_from_track_event(
    event_type: EventType,
    event: dict[str, Any],
    *,
    received_at: datetime,
    raw_json: str,
) -> EventRow:
    """The typed row for a semantic track event; MappingError if it cannot be stored.

    ``raw_json`` is the event as received, stored beside it as text.
    """
    if not isinstance(event, dict):
        raise MappingError("a track event must be a JSON object")
    message_id = event.get("messageId")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise MappingError(
            f"messageId must be a non-empty string of at most {MAX_MESSAGE_ID_LENGTH} characters"
        )
    _storable_text("messageId", message_id)
    user_id = _identity(event, "userId")
    anonymous_id = _identity(event, "anonymousId")
    properties = _object(event, "properties")
    context = _object(event, "context")
    integrations = event.get("integrations")
    texts = _json_texts(
        raw_json,
        properties,
        context,
        integrations if isinstance(integrations, dict) and integrations else None,
    )
    return _row(
        event_type,
        texts,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        properties=properties,
        context=context,
        timestamp=_moment(event, "timestamp"),
        original_timestamp=_optional_moment(event, "originalTimestamp"),
        sent_at=_optional_moment(event, "sentAt"),
        received_at=received_at,
    )


def _json_texts(
    raw_json: str,
    properties: dict[str, Any],
    context: dict[str, Any],
    integrations: dict[str, Any] | None,
) -> tuple[str, str, str, str | None]:
    """(raw, properties, context, integrations) as stored JSON; MappingError if one cannot be."""
    try:
        properties_json = exact_json.dumps(properties).decode()
        context_json = exact_json.dumps(context).decode()
        integrations_json = exact_json.dumps(integrations).decode() if integrations else None
    except orjson.JSONEncodeError as error:
        # Lone surrogates, nesting deeper than 254 levels.
        raise MappingError(f"the event cannot be stored as JSON: {error}") from None
    _refuse_nul(properties_json, context_json, integrations_json or "")
    return raw_json, properties_json, context_json, integrations_json


def _row(
    event_type: EventType,
    texts: tuple[str, str, str, str | None],
    *,
    message_id: str,
    user_id: str | None,
    anonymous_id: str | None,
    properties: dict[str, Any],
    context: dict[str, Any],
    timestamp: datetime,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> EventRow:
    raw_json, properties_json, context_json, integrations_json = texts
    traits = context.get("traits")
    email = _clean_id(traits.get("email")) if isinstance(traits, dict) else None
    if email is None and anonymous_id and "@" in anonymous_id:
        email = anonymous_id
    return EventRow(
        message_id=message_id,
        event=event_type.name,
        channel=event_type.channel.value,
        metric=event_type.metric.value,
        semantic=event_type.semantic,
        user_id=user_id,
        anonymous_id=anonymous_id,
        email=email if email is not None and len(email) <= MAX_EMAIL_LENGTH else None,
        delivery_id=_column_text(properties.get("delivery_id"), MAX_DELIVERY_ID_LENGTH),
        journey_id=_column_text(properties.get("journey_id"), MAX_JOURNEY_ID_LENGTH),
        campaign_id=_int_id(properties.get("campaign_id")),
        broadcast_id=_int_id(properties.get("broadcast_id")),
        newsletter_id=_int_id(properties.get("newsletter_id")),
        transactional_message_id=_int_id(properties.get("transactional_message_id")),
        action_id=_int_id(properties.get("action_id")),
        content_id=_int_id(properties.get("content_id")),
        trigger_id=_int_id(properties.get("trigger_id")),
        timestamp=timestamp,
        original_timestamp=original_timestamp,
        sent_at=sent_at,
        received_at=received_at,
        properties_json=properties_json,
        context_json=context_json,
        raw_json=raw_json,
        integrations_json=integrations_json,
    )
