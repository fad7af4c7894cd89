"""One person: their deliveries across channels, a tile per channel, activity per day."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.conf import settings
from django.utils import timezone

from dashboard import delivery_selectors, selectors
from dashboard.charts.person import person_activity_figure
from dashboard.filters import channel_label
from dashboard.pages.delivery_rows import list_dataset, list_rows
from dashboard.pages.formatting import number
from dashboard.pages.page import Chart, Dataset, Page, Tile

# The newest deliveries the page lists (and charts); beyond, it says so.
DELIVERIES_LIMIT = 500


def person_page(person_id: str) -> Page:
    page = Page(title=f"Person {person_id}", section="deliveries")
    page.context["hide_filterbar"] = True
    page.context["person_id"] = person_id
    page.context["time_zone"] = settings.TIME_ZONE
    totals = delivery_selectors.person_totals(person_id)
    rows = selectors.person_deliveries(person_id, limit=DELIVERIES_LIMIT) if totals else []
    labels = selectors.parents() if rows else {}
    shown = list_rows(rows, labels)
    page.context["rows"] = shown
    page.context["limited"] = len(rows) >= DELIVERIES_LIMIT
    page.add_dataset(list_dataset("deliveries", shown))
    page.context["total"] = sum(row["deliveries"] for row in totals)
    if not totals:
        return page

    page.context["first_at"] = min(row["first_at"] for row in totals)
    page.context["last_at"] = max(row["last_at"] for row in totals)
    page.context["recipients"] = sorted({row["recipient"] for row in rows if row["recipient"]})
    page.context["tiles"] = _tiles(totals)
    page.add_dataset(_channels_dataset(totals))
    per_day = _deliveries_per_day(rows)
    page.add_dataset(_activity_dataset(per_day))
    page.add_chart(_activity_chart(per_day, totals, limited=page.context["limited"]))
    return page


def _tiles(totals: list[dict[str, Any]]) -> list[Tile]:
    """All deliveries, then one tile per channel."""
    total = sum(row["deliveries"] for row in totals)
    return [Tile("Deliveries", number(total), detail=f"{len(totals)} channel(s)")] + [
        Tile(channel_label(row["channel"]), number(row["deliveries"]), detail=_responses(row))
        for row in totals
    ]


def _responses(row: dict[str, Any]) -> str:
    """'3 opened, 1 clicked' (what a channel's deliveries led to)."""
    parts = [
        f"{row[metric]} {metric}"
        for metric in ("opened", "clicked", "converted", "failed")
        if row[metric]
    ]
    return ", ".join(parts) or "no response yet"


def _channels_dataset(totals: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "channels",
        ["channel", "deliveries", "delivered", "opened", "clicked", "converted", "failed"],
        [
            (r["channel"], r["deliveries"], r["delivered"], r["opened"], r["clicked"],
             r["converted"], r["failed"])
            for r in totals
        ],
    )  # fmt: skip


def _deliveries_per_day(rows: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Day (ISO, in TIME_ZONE) -> channel -> deliveries created that day."""
    zone = timezone.get_current_timezone()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        per_day[row["created_at"].astimezone(zone).date().isoformat()][row["channel"]] += 1
    return per_day


def _activity_dataset(per_day: dict[str, Counter[str]]) -> Dataset:
    return Dataset(
        "activity",
        ["day", "channel", "deliveries"],
        [(day, ch, n) for day in sorted(per_day) for ch, n in sorted(per_day[day].items())],
    )


def _activity_chart(
    per_day: dict[str, Counter[str]], totals: list[dict[str, Any]], *, limited: bool
) -> Chart:
    return Chart(
        "activity",
        "Deliveries per day",
        person_activity_figure(
            {day: dict(counter) for day, counter in per_day.items()},
            channels=[row["channel"] for row in totals],
        ),
        "activity",
        note=f"Days in {settings.TIME_ZONE}"
        + (f", over the {DELIVERIES_LIMIT} newest deliveries." if limited else "."),
    )
