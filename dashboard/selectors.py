"""Reads for the dashboard: SQL aggregates returning plain data."""

from __future__ import annotations

from django.db.models import Count

from metrics_source.models import Event


def event_totals() -> list[dict]:
    """Stored events per channel and event name (all time)."""
    return list(
        Event.objects.values("channel", "event")
        .annotate(count=Count("id"))
        .order_by("channel", "event")
    )
