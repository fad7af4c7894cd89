"""Deliveries: search, the deliveries behind a funnel step, one delivery's timeline, and one
person's deliveries."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from dashboard import delivery_selectors, selectors
from dashboard.charts.person import person_activity_figure
from dashboard.charts.timeline import delivery_timeline_figure
from dashboard.filters import Filters, channel_label, parent_label
from dashboard.pages.formatting import number
from dashboard.pages.page import Chart, Dataset, Page, Tile
from metrics_source.ingest import exact_json
from metrics_source.summaries.metrics import FIRST_TIMES, ParentKind

LIST_LIMIT = 100
FIRST_TIME_COLUMNS = tuple(ft.column for ft in FIRST_TIMES)
# The metrics a funnel step (or any link) may ask the list for: "opened", "human_clicked", ...
REACHABLE = tuple(column.removesuffix("_at") for column in FIRST_TIME_COLUMNS)

# How far a delivery got, best first; a failure outranks them all (it is what needs a look).
FAILURES = ("bounced", "failed", "suppressed", "spammed", "undeliverable")
PROGRESS = ("converted", "clicked", "opened", "delivered", "sent", "attempted", "drafted")
# Pill colours (dashboard.css): ok green, pending blue, failed amber, bad red.
METRIC_TONES = {
    **dict.fromkeys(("converted", "clicked", "opened", "delivered", "replied"), "ok"),
    **dict.fromkeys(("sent", "attempted", "drafted"), "pending"),
    **dict.fromkeys(("unsubscribed", "deferred"), "failed"),
    **dict.fromkeys(FAILURES, "bad"),
}
# How the list's caption ends ("Email deliveries sent in the last 30 days that were opened").
REACHED_WORDING = {
    "delivered": "that were delivered",
    "opened": "that were opened",
    "human_opened": "that were opened by a person (machine opens left out)",
    "clicked": "that were clicked",
    "human_clicked": "that were clicked by a person (machine clicks left out)",
    "converted": "that converted",
    "unsubscribed": "that led to an unsubscribe",
    "bounced": "that bounced",
    "suppressed": "that were suppressed",
    "spammed": "that were marked as spam",
    "failed": "that failed",
    "undeliverable": "that were undeliverable",
    "deferred": "that were deferred",
    "replied": "that were replied to",
    "drafted": "that were drafted",
    "attempted": "that were attempted",
}
LIST_COLUMNS = (
    "delivery_id",
    "channel",
    "parent_kind",
    "parent_id",
    "action_id",
    "person_id",
    "recipient",
    "subject",
    "created_at",
    "status",
    *FIRST_TIME_COLUMNS,
)


# --- small helpers ------------------------------------------------------------------------


def delivery_url(delivery_id: str) -> str:
    return reverse("dashboard:delivery", args=[delivery_id])


def person_url(person_id: str | None) -> str:
    return reverse("dashboard:person", args=[person_id]) if person_id else ""


def parent_link(
    kind: str, parent_id: int | None, labels: dict[tuple[str, int], dict[str, Any]]
) -> tuple[str, str]:
    """(label, URL of the campaign page) of a delivery's parent; ("", "") when it has none."""
    if not kind or parent_id is None:
        return "", ""
    row = labels.get((kind, parent_id)) or {}
    return (
        parent_label(kind, parent_id, row.get("label") or ""),
        reverse("dashboard:campaign", args=[kind, parent_id]),
    )


def status_of(first_times: dict[str, Any]) -> tuple[str, str]:
    """The furthest metric a delivery reached, as (metric, pill tone)."""
    for metric in (*FAILURES, *PROGRESS):
        if first_times.get(f"{metric}_at"):
            return metric, METRIC_TONES.get(metric, "")
    return "created", ""


def since(moment: datetime, origin: datetime | None) -> str:
    """'2 h 5 min after sent' (or before, for an event timestamped earlier)."""
    if origin is None:
        return ""
    delta = moment - origin
    if delta == timedelta(0):
        return "at send"
    word = "after" if delta > timedelta(0) else "before"
    return f"{duration(abs(delta))} {word} sent"


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s" if secs else "under 1 s"


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column as read through a plain cursor (text) or a model (data)."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def is_machine(properties: Any) -> bool:
    """Prefetched or proxied opens and machine clicks, as the rollup tells them apart."""
    properties = as_dict(properties)
    flags = ("prefetched", "proxied", "machine")
    return any(properties.get(flag) in (True, "true") for flag in flags)


def pretty_json(raw: Any) -> str:
    """The stored JSON, indented (the raw column is text; unreadable text is shown as is)."""
    if isinstance(raw, str):
        try:
            raw = exact_json.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return json.dumps(raw, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def list_rows(
    rows: list[dict[str, Any]], labels: dict[tuple[str, int], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Summary rows as the result table shows them."""
    out = []
    for row in rows:
        metric, tone = status_of(row)
        parent, parent_url = parent_link(row["parent_kind"], row["parent_id"], labels)
        out.append(
            {
                **row,
                "url": delivery_url(row["delivery_id"]),
                "channel_label": channel_label(row["channel"]),
                "parent_label": parent,
                "parent_url": parent_url,
                "person_url": person_url(row["person_id"]),
                "status": metric,
                "tone": tone,
                "unsubscribed": bool(row.get("unsubscribed_at")),
            }
        )
    return out


def list_dataset(name: str, rows: list[dict[str, Any]]) -> Dataset:
    def cell(row: dict[str, Any], column: str) -> Any:
        value = row.get(column)
        return value.isoformat() if isinstance(value, datetime) else value

    return Dataset(name, LIST_COLUMNS, [[cell(row, c) for c in LIST_COLUMNS] for row in rows])


# --- the deliveries list ---------------------------------------------------------------------


def _list_caption(filters: Filters, labels: dict, *, reached: str | None) -> str:
    """'Email deliveries of Campaign 3 · Welcome sent in the last 30 days that were opened'."""
    what = f"{channel_label(filters.channel)} deliveries" if filters.channel else "Deliveries"
    if filters.parent_kind is not None and filters.parent_id is not None:
        what += " of " + parent_link(filters.parent_kind, filters.parent_id, labels)[0]
    caption = f"{what} sent {filters.period_phrase}"
    if reached and reached != "sent":
        caption += " " + REACHED_WORDING.get(reached, f"that reached {reached}")
    return caption


def deliveries_page(filters: Filters, *, text: str | None, reached: str | None) -> Page:
    page = Page(title="Deliveries", section="deliveries")
    text = (text or "").strip() or None
    notices: list[str] = []
    if reached is not None and reached not in REACHABLE:
        notices.append(f"Unknown step {reached!r}; showing the most recent deliveries instead.")
        reached = None
    keep = {key: value for key, value in (("q", text), ("reached", reached)) if value}
    page.context["keep_params"] = keep
    page.context["search_text"] = text or ""
    # The search form keeps the filters (the list they lead back to), never the drill-down.
    page.context["search_hidden"] = filters.params()
    labels = selectors.parents()

    if text:
        rows = selectors.deliveries_matching(text, limit=LIST_LIMIT)
        page.context["mode"] = "search"
        page.context["caption"] = (
            f"Deliveries whose id, person id or email is exactly “{text}”"
            if rows
            else f"No delivery, person or email is exactly “{text}”."
        )
    elif reached:
        rows = selectors.deliveries_reaching(filters, f"{reached}_at", limit=LIST_LIMIT)
        page.context["mode"] = "reached"
        page.context["caption"] = _list_caption(filters, labels, reached=reached)
        page.context["clear_url"] = reverse("dashboard:deliveries") + filters.query()
    else:
        rows = selectors.deliveries_reaching(filters, "created_at", limit=LIST_LIMIT)
        page.context["mode"] = "recent"
        page.context["caption"] = _list_caption(filters, labels, reached=None)

    page.context["notices"] = notices
    shown = list_rows(rows, labels)
    page.context["rows"] = shown
    page.context["limited"] = len(rows) >= LIST_LIMIT
    page.context["limit"] = LIST_LIMIT
    page.add_dataset(list_dataset("deliveries", shown))
    return page


# --- one delivery ----------------------------------------------------------------------------


def _facts_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the summary would say, worked out from the events (the rollup has not caught up):
    the first value of each field in time order, the first time of each metric."""

    def first(key: str) -> Any:
        return next((e[key] for e in events if e.get(key) not in (None, "")), None)

    facts: dict[str, Any] = {"channel": events[0]["channel"], "parent_kind": "", "parent_id": None}
    for column, kind in ParentKind.COLUMNS:
        if (value := first(column)) is not None:
            facts["parent_kind"], facts["parent_id"] = kind, value
            break
    people = (e["user_id"] or e["anonymous_id"] for e in events)
    person = next((p for p in people if p), None)
    recipients = [as_dict(e["properties"]).get("recipient") or e["email"] for e in events]
    subjects = [as_dict(e["properties"]).get("subject") for e in events]
    facts |= {
        "action_id": first("action_id"),
        "person_id": person,
        "recipient": next((r for r in recipients if r), None),
        "subject": next((s for s in subjects if s), None),
        "source_id": first("source_id"),
        "created_at": events[0]["timestamp"],
        "last_event_at": events[-1]["timestamp"],
        "events": len(events),
    }
    for column in FIRST_TIME_COLUMNS:
        metric = column.removesuffix("_at")
        human = metric.startswith("human_")
        wanted = metric.removeprefix("human_")
        facts[column] = next(
            (
                e["timestamp"]
                for e in events
                if e["metric"] == wanted and not (human and is_machine(e["properties"]))
            ),
            None,
        )
    return facts


def _forwarding(events: list[dict[str, Any]]) -> dict[str, Any]:
    destinations = delivery_selectors.destinations()
    if not destinations or not events:
        return {"destinations": destinations, "rows": []}
    ledger = {
        (row["event_id"], row["destination_id"]): row
        for row in selectors.forwarding_status([event["id"] for event in events])
    }
    rows = []
    for event in events:
        cells = []
        for destination in destinations:
            entry = ledger.get((event["id"], destination["id"]))
            cells.append(entry)
        rows.append({"event": event, "cells": cells})
    return {"destinations": destinations, "rows": rows}


def delivery_page(delivery_id: str) -> Page:
    summary = selectors.delivery_summary(delivery_id)
    events = delivery_selectors.delivery_event_rows(delivery_id)
    if summary is None and not events:
        raise Http404("no such delivery")
    facts = summary if summary is not None else _facts_from_events(events)
    page = Page(title="Delivery", section="deliveries")
    page.context["hide_filterbar"] = True
    page.context["delivery_id"] = delivery_id
    page.context["time_zone"] = settings.TIME_ZONE
    page.context["summarised"] = summary is not None
    zone = timezone.get_current_timezone()
    sent = facts.get("sent_at") or facts.get("created_at")

    labels = selectors.parents() if facts["parent_kind"] else {}
    parent, parent_url = parent_link(facts["parent_kind"], facts["parent_id"], labels)
    metric, tone = status_of(facts)
    page.context["status"] = {"metric": metric, "tone": tone}
    page.context["facts"] = {
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
    page.context["first_times"] = [
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
    page.context["first_times"].sort(key=lambda item: item["at"])

    shown = []
    for event in events:
        machine = is_machine(event["properties"])
        shown.append(
            {
                **event,
                "since": since(event["timestamp"], sent),
                "machine": machine,
                "tone": METRIC_TONES.get(event["metric"], ""),
                "json": pretty_json(event["raw"]),
            }
        )
    page.context["events"] = shown
    page.context["events_limited"] = len(events) >= 1000
    page.context["forwarding"] = _forwarding(events)
    page.context["destination_add_url"] = reverse("admin:metrics_source_destination_add")

    page.add_dataset(
        Dataset(
            "events",
            ["timestamp", "event", "metric", "since_sent", "machine", "message_id", "origin"],
            [
                (e["timestamp"].isoformat(), e["event"], e["metric"], e["since"], e["machine"],
                 e["message_id"], e["origin"])
                for e in shown
            ],
        )
    )  # fmt: skip
    if shown:
        page.add_chart(
            Chart(
                "timeline",
                "Timeline",
                delivery_timeline_figure(
                    [
                        {
                            "at": e["timestamp"].astimezone(zone).replace(tzinfo=None).isoformat(),
                            "metric": e["metric"],
                            "event": e["event"],
                            "since": e["since"],
                            "machine": e["machine"],
                        }
                        for e in shown
                    ]
                ),
                "events",
                note=f"Times in {settings.TIME_ZONE}; hover a point for the time since sent. "
                "Hollow points are machine opens or clicks.",
            )
        )
    return page


# --- one person ------------------------------------------------------------------------------


def person_page(person_id: str) -> Page:
    page = Page(title=f"Person {person_id}", section="deliveries")
    page.context["hide_filterbar"] = True
    page.context["person_id"] = person_id
    page.context["time_zone"] = settings.TIME_ZONE
    totals = delivery_selectors.person_totals(person_id)
    rows = selectors.person_deliveries(person_id) if totals else []
    labels = selectors.parents() if rows else {}
    shown = list_rows(rows, labels)
    page.context["rows"] = shown
    page.context["limited"] = len(rows) >= 500
    page.add_dataset(list_dataset("deliveries", shown))

    total = sum(row["deliveries"] for row in totals)
    page.context["total"] = total
    if not totals:
        return page
    page.context["first_at"] = min(row["first_at"] for row in totals)
    page.context["last_at"] = max(row["last_at"] for row in totals)
    page.context["recipients"] = sorted({row["recipient"] for row in rows if row["recipient"]})

    tiles = [Tile("Deliveries", number(total), detail=f"{len(totals)} channel(s)")]
    for row in totals:
        tiles.append(
            Tile(
                channel_label(row["channel"]),
                number(row["deliveries"]),
                detail=_channel_detail(row),
            )
        )
    page.context["tiles"] = tiles
    page.add_dataset(
        Dataset(
            "channels",
            ["channel", "deliveries", "delivered", "opened", "clicked", "converted", "failed"],
            [
                (r["channel"], r["deliveries"], r["delivered"], r["opened"], r["clicked"],
                 r["converted"], r["failed"])
                for r in totals
            ],
        )
    )  # fmt: skip

    zone = timezone.get_current_timezone()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        per_day[row["created_at"].astimezone(zone).date().isoformat()][row["channel"]] += 1
    page.add_dataset(
        Dataset(
            "activity",
            ["day", "channel", "deliveries"],
            [(day, ch, n) for day in sorted(per_day) for ch, n in sorted(per_day[day].items())],
        )
    )
    page.add_chart(
        Chart(
            "activity",
            "Deliveries per day",
            person_activity_figure(
                {day: dict(counter) for day, counter in per_day.items()},
                channels=[row["channel"] for row in totals],
            ),
            "activity",
            note=f"Days in {settings.TIME_ZONE}"
            + (", over the 500 newest deliveries." if page.context["limited"] else "."),
        )
    )
    return page


def _channel_detail(row: dict[str, Any]) -> str:
    parts = []
    if row["opened"]:
        parts.append(f"{row['opened']} opened")
    if row["clicked"]:
        parts.append(f"{row['clicked']} clicked")
    if row["converted"]:
        parts.append(f"{row['converted']} converted")
    if row["failed"]:
        parts.append(f"{row['failed']} failed")
    return ", ".join(parts) or "no response yet"
