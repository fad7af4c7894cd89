"""Customer.io reporting-webhook payloads -> semantic track events, exactly as Customer.io's
own "Journeys Message Metrics" source maps them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from metrics_source.ingest import exact_json
from metrics_source.ingest.catalog import Channel, EventType, event_type_for_webhook
from metrics_source.ingest.mapping.rows import (
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MappingError,
    check_plausible,
    clean_id,
    column_text,
    holds_escaped_nul,
    iso,
)


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
    check_plausible(happened_at, field="timestamp")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MappingError("data is required and must be an object")

    # NUL cannot be stored in PostgreSQL's text or jsonb: under data it becomes U+FFFD, and the
    # payload as received keeps it (escaped). Refusing it would stall the source's webhooks.
    if _holds_nul(data):
        data = _without_nul(data)
    delivery_id = clean_id(data.get("delivery_id"))
    event_type = event_type_for_webhook(object_type, metric, has_delivery=delivery_id is not None)
    if event_type is None:
        raise MappingError(f"unknown object_type/metric pair: {object_type!r}/{metric!r}")

    identifiers = data.get("identifiers")
    identifiers = identifiers if isinstance(identifiers, dict) else {}
    # An id too long for its column counts as absent here (it stays in the payload as
    # received): a webhook is never refused for its person, see below.
    user_id = column_text(identifiers.get("id"), MAX_ID_LENGTH) or column_text(
        data.get("customer_id"), MAX_ID_LENGTH
    )
    email = clean_id(identifiers.get("email")) or clean_id(data.get("email_address"))
    recipient = data.get("recipient")
    # Only an email's recipient is an address; a webhook's is a URL, a Slack one a channel.
    if email is None and object_type == "email" and isinstance(recipient, str):
        email = recipient.strip() or None
    cio_id = clean_id(identifiers.get("cio_id"))
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
    if not clean_id(properties.get("customer_id")) and user_id:
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
    return holds_escaped_nul(text.decode())


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
