"""Reads for the dashboard: SQL aggregates returning plain data."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from metrics_source.models import Event


def event_totals() -> list[dict[str, Any]]:
    """Stored events per channel and event name (all time)."""
    rows = Event.objects.values("channel", "event").annotate(count=Count("id"))
    return [dict(row) for row in rows.order_by("channel", "event")]
