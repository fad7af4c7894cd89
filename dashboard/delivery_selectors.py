"""Reads for the delivery, person and search pages that dashboard/selectors.py does not offer:
one delivery's events with the columns its facts fall back on, the destinations events are
forwarded to, and one person's totals per channel. One query each."""

from __future__ import annotations

from typing import Any

from dashboard.selectors import EVENTS, SUMMARY, _dicts
from metrics_source.forwarding.models import Destination
from metrics_source.models import Source

# Failures a delivery can end in (a person's "failed" tile counts any of them).
FAILURE_COLUMNS = ("bounced_at", "failed_at", "suppressed_at", "spammed_at", "undeliverable_at")


def delivery_event_rows(delivery_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    """One delivery's events in time order, with what its summary is made of (parent columns,
    email), so the page stands on the events alone while the rollup has not caught up."""
    return _dicts(
        "SELECT id, message_id, event, channel, metric, semantic, timestamp, received_at, "
        "origin, source_id, user_id, anonymous_id, email, campaign_id, broadcast_id, "
        "newsletter_id, transactional_message_id, action_id, properties, raw "
        f"FROM {EVENTS} WHERE delivery_id = %s ORDER BY timestamp, id LIMIT %s",
        [delivery_id, limit],
    )


def destinations() -> list[dict[str, Any]]:
    """Every forwarding destination, by name (no secrets: only what the page shows)."""
    rows = Destination.objects.order_by("name").values("id", "name", "enabled", "paused", "kind")
    return [dict(row) for row in rows]


def source_name(source_id: int | None) -> str | None:
    if not source_id:
        return None
    return Source.objects.filter(pk=source_id).values_list("name", flat=True).first()


def person_totals(person_id: str) -> list[dict[str, Any]]:
    """Per channel: one person's deliveries and how many were delivered, opened, clicked,
    converted or failed (over all of them, not only the newest listed)."""
    failed = " OR ".join(f"{column} IS NOT NULL" for column in FAILURE_COLUMNS)
    return _dicts(
        "SELECT channel, count(*) AS deliveries, count(delivered_at) AS delivered, "
        "count(opened_at) AS opened, count(clicked_at) AS clicked, "
        f"count(converted_at) AS converted, count(*) FILTER (WHERE {failed}) AS failed, "
        "min(created_at) AS first_at, max(created_at) AS last_at "
        f"FROM {SUMMARY} WHERE person_id = %s GROUP BY channel ORDER BY 2 DESC, 1",
        [person_id],
    )
