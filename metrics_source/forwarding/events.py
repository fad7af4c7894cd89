"""Stored rows -> the semantic track events forwarded, exactly as they were stored."""

from __future__ import annotations

from typing import Any

from metrics_source.mapping import iso
from metrics_source.models import Event

EVENT_FIELDS = (
    "id",
    "message_id",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "context",
    "properties",
)


def track_event_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The semantic track event for a stored row (a dict of EVENT_FIELDS), in the key order
    the mapping writes, plus ``receivedAt`` as a Segment-compatible server sets it."""
    event: dict[str, Any] = {"type": "track", "event": row["event"]}
    if row["user_id"]:
        event["userId"] = row["user_id"]
    if row["anonymous_id"]:
        event["anonymousId"] = row["anonymous_id"]
    event["messageId"] = row["message_id"]
    event["timestamp"] = iso(row["timestamp"])
    if row["original_timestamp"] is not None:
        event["originalTimestamp"] = iso(row["original_timestamp"])
    if row["sent_at"] is not None:
        event["sentAt"] = iso(row["sent_at"])
    event["receivedAt"] = iso(row["received_at"])
    event["context"] = row["context"]
    event["properties"] = row["properties"]
    return event


def events_for_ids(event_ids: list[int]) -> dict[int, dict[str, Any]]:
    """id -> row dict, in timestamp order (dicts keep insertion order)."""
    rows = Event.objects.filter(pk__in=event_ids).order_by("timestamp", "pk").values(*EVENT_FIELDS)
    return {row["id"]: row for row in rows}
