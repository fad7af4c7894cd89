"""The typed row an event is stored as, and the rules every input shares to get there.

``EventRow`` holds the columns the reads need beside the JSON kept as received;
``row_from_track_event`` makes one from a semantic track event (what the webhook mapping
produces). The limits of the id columns, ``MappingError``, ``iso`` (how timestamps are written)
and the checks for text PostgreSQL cannot hold live here too, since both the webhook and the
track-call mapping use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings

from metrics_source.ingest import exact_json
from metrics_source.ingest.catalog import EventType

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


def check_plausible(moment: datetime, *, field: str, now: datetime | None = None) -> None:
    """MappingError unless ``moment`` lies within the plausibility window: at most
    EVENT_MAX_AGE_DAYS before now and EVENT_MAX_FUTURE_SECONDS after it. A message event
    from 1970 or from next year is a sender's bug, and one stored would sit in every chart's
    range for good."""
    current = now or datetime.now(UTC)
    try:
        oldest = current - timedelta(days=settings.EVENT_MAX_AGE_DAYS)
    except OverflowError:  # a window wider than the calendar: no lower bound
        oldest = datetime.min.replace(tzinfo=UTC)
    try:
        latest = current + timedelta(seconds=settings.EVENT_MAX_FUTURE_SECONDS)
    except OverflowError:  # no upper bound
        latest = datetime.max.replace(tzinfo=UTC)
    if moment < oldest:
        raise MappingError(
            f"{field} {iso(moment)} is more than {settings.EVENT_MAX_AGE_DAYS} days in the past "
            "(EVENT_MAX_AGE_DAYS)"
        )
    if moment > latest:
        raise MappingError(
            f"{field} {iso(moment)} is more than {settings.EVENT_MAX_FUTURE_SECONDS} s in the "
            "future (EVENT_MAX_FUTURE_SECONDS): check the sender's clock"
        )


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Customer.io writes its timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clean_id(value: Any) -> str | None:
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


def column_text(value: Any, limit: int) -> str | None:
    """A string id for a typed column, or None when absent or too long for the column."""
    text = clean_id(value)
    return text if text is not None and len(text) <= limit else None


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


def holds_escaped_nul(json_text: str) -> bool:
    return "\\u0000" in json_text and _ESCAPED_NUL.search(json_text) is not None


def _refuse_nul(*json_texts: str) -> None:
    if any(map(holds_escaped_nul, json_texts)):
        raise MappingError("NUL characters (\\u0000) cannot be stored")


def storable_text(name: str, value: str) -> None:
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
    return checked_identity(key, value)


def checked_identity(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_ID_LENGTH:
        raise MappingError(f"{key} is longer than {MAX_ID_LENGTH} characters")
    storable_text(key, value)
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
    storable_text("messageId", message_id)
    user_id = _identity(event, "userId")
    anonymous_id = _identity(event, "anonymousId")
    properties = _object(event, "properties")
    context = _object(event, "context")
    integrations = event.get("integrations")
    texts = json_columns(
        raw_json,
        properties,
        context,
        integrations if isinstance(integrations, dict) and integrations else None,
    )
    return event_row(
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


def json_columns(
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


def event_row(
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
    email = clean_id(traits.get("email")) if isinstance(traits, dict) else None
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
        delivery_id=column_text(properties.get("delivery_id"), MAX_DELIVERY_ID_LENGTH),
        journey_id=column_text(properties.get("journey_id"), MAX_JOURNEY_ID_LENGTH),
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
