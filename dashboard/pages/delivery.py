"""One delivery: what it is, how far it got and when, every event with its JSON on a
timeline, and each event's status at each forwarding destination."""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from dashboard import delivery_selectors, selectors
from dashboard.charts.timeline import delivery_timeline_figure
from dashboard.filters import channel_label
from dashboard.pages.delivery_facts import facts_from_events, is_machine, is_test
from dashboard.pages.delivery_rows import (
    FIRST_TIME_COLUMNS,
    METRIC_TONES,
    parent_link,
    person_url,
    status_of,
)
from dashboard.pages.formatting import since
from dashboard.pages.page import Chart, Dataset, Page
from metrics_source.ingest import exact_json

# The events a delivery page lists; beyond, it says the list is cut.
EVENTS_LIMIT = 1000


def delivery_page(delivery_id: str) -> Page:
    summary = selectors.delivery_summary(delivery_id)
    events = delivery_selectors.delivery_event_rows(delivery_id, limit=EVENTS_LIMIT)
    if summary is None and not events:
        raise Http404("no such delivery")
    facts = summary if summary is not None else facts_from_events(events)
    sent = facts.get("sent_at") or facts.get("created_at")
    page = Page(title="Delivery", section="deliveries")
    page.context["hide_filterbar"] = True
    page.context["delivery_id"] = delivery_id
    page.context["time_zone"] = settings.TIME_ZONE
    page.context["summarised"] = summary is not None

    metric, tone = status_of(facts)
    page.context["status"] = {"metric": metric, "tone": tone}
    page.context["facts"] = _facts(facts)
    page.context["first_times"] = _first_times(facts, sent)

    shown = [_event_row(event, sent) for event in events]
    page.context["events"] = shown
    page.context["test_events"] = sum(1 for event in shown if event["test"])
    page.context["events_limited"] = len(events) >= EVENTS_LIMIT
    page.context["forwarding"] = _forwarding(events)
    page.context["destination_add_url"] = reverse("admin:metrics_source_destination_add")
    page.add_dataset(_events_dataset(shown))
    if shown:
        page.add_chart(_timeline_chart(shown))
    return page


def _facts(facts: dict[str, Any]) -> dict[str, Any]:
    """What the delivery is: channel, parent, action, person, recipient, subject, source."""
    labels = selectors.parents() if facts["parent_kind"] else {}
    parent, parent_url = parent_link(facts["parent_kind"], facts["parent_id"], labels)
    return {
        "channel": channel_label(facts["channel"]),
        "channel_url": reverse("dashboard:channel", args=[facts["channel"]]),
        "parent": parent,
        "parent_url": parent_url,
        "action_id": facts.get("action_id"),
        "person_id": facts.get("person_id"),
        "person_url": person_url(facts.get("person_id")),
        "recipient": facts.get("recipient"),
        "subject": facts.get("subject"),
        "source": delivery_selectors.source_name(facts.get("source_id")),
        "created_at": facts.get("created_at"),
        "last_event_at": facts.get("last_event_at"),
        "events": facts.get("events"),
        "failure_message": facts.get("failure_message"),
    }


def _first_times(facts: dict[str, Any], sent: Any) -> list[dict[str, Any]]:
    """The first time it reached each metric, in time order."""
    first_times = [
        {
            "metric": column.removesuffix("_at"),
            "label": column.removesuffix("_at").replace("_", " ").capitalize(),
            "at": facts[column],
            "since": since(facts[column], sent),
            "tone": METRIC_TONES.get(column.removesuffix("_at").removeprefix("human_"), ""),
        }
        for column in FIRST_TIME_COLUMNS
        if facts.get(column)
    ]
    first_times.sort(key=lambda item: item["at"])
    return first_times


def _event_row(event: dict[str, Any], sent: Any) -> dict[str, Any]:
    return {
        **event,
        "since": since(event["timestamp"], sent),
        "machine": is_machine(event["properties"]),
        "test": is_test(event["properties"]),
        "tone": METRIC_TONES.get(event["metric"], ""),
        "json": pretty_json(event["raw"]),
    }


def pretty_json(raw: Any) -> str:
    """The stored JSON, indented (the raw column is text; unreadable text is shown as is)."""
    if isinstance(raw, str):
        try:
            raw = exact_json.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return json.dumps(raw, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _forwarding(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Each event's ledger entry at each destination (None where it has none)."""
    destinations = delivery_selectors.destinations()
    if not destinations or not events:
        return {"destinations": destinations, "rows": []}
    ledger = {
        (row["event_id"], row["destination_id"]): row
        for row in selectors.forwarding_status([event["id"] for event in events])
    }
    rows = [
        {
            "event": event,
            "cells": [ledger.get((event["id"], destination["id"])) for destination in destinations],
        }
        for event in events
    ]
    return {"destinations": destinations, "rows": rows}


def _events_dataset(shown: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "events",
        ["timestamp", "event", "metric", "since_sent", "machine", "message_id", "origin"],
        [
            (e["timestamp"].isoformat(), e["event"], e["metric"], e["since"], e["machine"],
             e["message_id"], e["origin"])
            for e in shown
        ],
    )  # fmt: skip


def _timeline_chart(shown: list[dict[str, Any]]) -> Chart:
    zone = timezone.get_current_timezone()
    points = [
        {
            "at": e["timestamp"].astimezone(zone).replace(tzinfo=None).isoformat(),
            "metric": e["metric"],
            "event": e["event"],
            "since": e["since"],
            "machine": e["machine"],
        }
        for e in shown
    ]
    return Chart(
        "timeline",
        "Timeline",
        delivery_timeline_figure(points),
        "events",
        note=f"Times in {settings.TIME_ZONE}; hover a point for the time since sent. "
        "Hollow points are machine opens or clicks.",
    )
