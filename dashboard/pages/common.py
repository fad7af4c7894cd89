"""What every dashboard page is made of: tables (datasets) that can be downloaded as CSV,
charts built from them, KPI tiles, and the options of the filter bar."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpResponse

from dashboard import selectors
from dashboard.filters import (
    BASIS_LABELS,
    INTERVALS,
    PERIODS,
    Filters,
    channel_label,
    parent_label,
)
from metrics_source.ingest.catalog import Channel


@dataclass
class Dataset:
    """A table as shown on the page and as downloaded: header and rows of plain values."""

    name: str
    columns: Sequence[str]
    rows: list[Sequence[Any]]


@dataclass
class Chart:
    name: str
    title: str
    figure: dict[str, Any]
    dataset: str  # the Dataset behind it, for the CSV link
    note: str = ""
    csv_url: str = ""

    @property
    def element_id(self) -> str:
        return f"figure-{self.name}"


@dataclass
class Tile:
    label: str
    value: str
    change: str = ""
    # "good", "bad" or "" (no change or no previous period to compare with).
    tone: str = ""
    detail: str = ""


@dataclass
class Page:
    title: str
    section: str
    charts: dict[str, Chart] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def add_dataset(self, dataset: Dataset) -> Dataset:
        self.datasets[dataset.name] = dataset
        return dataset

    def add_chart(self, chart: Chart) -> Chart:
        self.charts[chart.name] = chart
        return chart

    def link_downloads(self, filters: Filters, **extra: str) -> None:
        """Give every chart and table its CSV link (the page's URL plus ``download``)."""
        for chart in self.charts.values():
            chart.csv_url = filters.query(**extra, download=chart.dataset)
        self.context["csv_urls"] = {
            name: filters.query(**extra, download=name) for name in self.datasets
        }


def csv_response(dataset: Dataset, *, filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(dataset.columns)
    for row in dataset.rows:
        writer.writerow(["" if value is None else value for value in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{dataset.name}.csv"'
    return response


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def count_change(current: int, previous: int) -> tuple[str, str]:
    """'+12.5% vs previous' and its tone (more sent/delivered is good)."""
    if not previous:
        return ("new in this period" if current else "", "")
    change = (current - previous) / previous
    return (
        f"{change:+.1%} vs previous",
        "good" if change > 0 else "bad" if change < 0 else "",
    )


def rate_change(
    current: float | None, previous: float | None, *, bad_when_up: bool
) -> tuple[str, str]:
    """'+1.2 pts vs previous' (percentage points) and its tone."""
    if current is None or previous is None:
        return "", ""
    points = (current - previous) * 100
    if abs(points) < 0.05:
        return "no change vs previous", ""
    up_is_good = not bad_when_up
    tone = "good" if (points > 0) == up_is_good else "bad"
    return f"{points:+.1f} pts vs previous", tone


def filter_options(filters: Filters) -> dict[str, Any]:
    """Choices for the filter bar, with the current values selected."""
    parents = selectors.parents()
    sources = selectors.source_names()
    return {
        "periods": [(key, label) for key, (label, _) in PERIODS.items()]
        + [("custom", "Custom dates")],
        "intervals": [(key, key.capitalize()) for key in INTERVALS],
        "bases": list(BASIS_LABELS.items()),
        "channels": [(c.value, channel_label(c.value)) for c in Channel],
        "parents": sorted(
            (
                (f"{kind}:{pid}", parent_label(kind, pid, row["label"]))
                for (kind, pid), row in parents.items()
            ),
            key=lambda item: item[1],
        ),
        "sources": sorted(sources.items(), key=lambda item: item[1]),
        "custom_from": filters.params().get("from", ""),
        "custom_to": filters.params().get("to", ""),
    }


# The rollup is woken after every ingest commit and by beat every few seconds: an event still
# queued after a minute means it is not running (or cannot keep up), and the charts say so.
BACKLOG_NOTICE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class BacklogNotice:
    events: str  # "1,234 stored events" / "more than 100,000 stored events"
    verb: str  # "is" / "are"
    oldest_received_at: datetime


def stale_backlog() -> BacklogNotice | None:
    """The summaries' backlog when it is old enough to tell the reader about, else None."""
    backlog = selectors.summaries_backlog()
    if backlog is None or datetime.now(UTC) - backlog.oldest_received_at < BACKLOG_NOTICE_AFTER:
        return None
    noun = "stored event" if backlog.events == 1 else "stored events"
    events = f"{'more than ' if backlog.capped else ''}{backlog.events:,} {noun}"
    return BacklogNotice(events, "is" if backlog.events == 1 else "are", backlog.oldest_received_at)
