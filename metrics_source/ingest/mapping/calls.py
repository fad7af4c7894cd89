"""Track calls from Segment-compatible SDKs -> semantic track events or straight to rows.

The calls are already in the semantic format; they are validated and normalised here (batch
context and integrations merged, timestamps corrected for clock skew). ``row_from_call`` is the
tracking API's hot path: the same row as ``row_from_track_event(*track_event_from_call(...))``
without the event dict in between.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from metrics_source.ingest.catalog import EventType, event_type_by_name
from metrics_source.ingest.mapping.rows import (
    MAX_MESSAGE_ID_LENGTH,
    EventRow,
    MappingError,
    check_plausible,
    checked_identity,
    clean_id,
    event_row,
    iso,
    json_columns,
    storable_text,
)


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
    user_id = clean_id(parsed.userId)
    anonymous_id = clean_id(parsed.anonymousId)
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
    # The moment the event is filed under (after the skew correction) must be plausible.
    check_plausible(timestamp, field="timestamp", now=received_at)

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
    storable_text("messageId", normal.message_id)
    user_id = checked_identity("userId", normal.user_id)
    anonymous_id = checked_identity("anonymousId", normal.anonymous_id)
    texts = json_columns(raw_json, normal.properties, normal.context, normal.integrations)
    row = event_row(
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
