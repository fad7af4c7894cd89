"""The list of campaigns, broadcasts, newsletters and transactional messages: a table with
every rate, and the busiest compared in a chart."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from dashboard import parent_selectors, selectors
from dashboard.charts.comparison import parent_comparison_figure
from dashboard.filters import Filters, channel_label, parent_label
from dashboard.pages.formatting import number
from dashboard.pages.page import Chart, Dataset, Page
from dashboard.pages.tables import TABLE_RATES, rate_cells
from dashboard.pages.totals import unique
from dashboard.rates import RATE_BY_KEY, Totals, channel_has, rates_for
from metrics_source.summaries.metrics import ParentKind

# Bars in the comparison chart: the busiest parents, so labels stay readable.
TOP_PARENTS = 15
# Column headings short enough to leave the name column room (the full name on hover).
SHORT_RATE_LABELS = {
    "delivery_rate": "Delivery",
    "open_rate": "Open",
    "click_rate": "Click",
    "click_to_open": "CTO",
    "conversion_rate": "Conv.",
    "bounce_rate": "Bounce",
    "unsubscribe_rate": "Unsub.",
    "spam_rate": "Spam",
}


def campaigns_page(filters: Filters) -> Page:
    page = Page(title="Campaigns", section="campaigns")
    by_parent = parent_selectors.totals_by_parent_channel(filters)
    known = selectors.parents() if by_parent else {}
    page.context["has_data"] = bool(by_parent) or selectors.has_events()

    rows = _rows(filters, by_parent, known)
    page.context["parent_rows"] = rows
    page.context["rate_headers"] = [
        (SHORT_RATE_LABELS[key], RATE_BY_KEY[key].label) for key in TABLE_RATES
    ]
    page.context["kind_counts"] = _kind_counts(rows)
    page.add_dataset(_dataset(rows))
    page.add_chart(_comparison_chart(rows))
    return page


def _rows(
    filters: Filters,
    by_parent: dict[tuple[str, int], dict[str, Totals]],
    known: dict[tuple[str, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per parent with activity, busiest first."""
    rows = [
        _row(filters, kind, parent_id, by_channel, known.get((kind, parent_id), {}))
        for (kind, parent_id), by_channel in by_parent.items()
    ]
    rows.sort(key=lambda row: (-row["sent"], row["kind"], row["parent_id"]))
    return rows


def _row(
    filters: Filters,
    kind: str,
    parent_id: int,
    by_channel: dict[str, Totals],
    detail: dict[str, Any],
) -> dict[str, Any]:
    channels = sorted(by_channel)
    row: dict[str, Any] = {
        "kind": kind,
        "kind_label": _kind_label(kind),
        "parent_id": parent_id,
        "name": detail.get("label") or "",
        "label": parent_label(kind, parent_id, detail.get("label") or ""),
        "short": f"{_kind_label(kind)} {parent_id}",
        # The detail page names the parent: the parent filter would only repeat it.
        "url": reverse("dashboard:campaign", args=[kind, parent_id]) + filters.query(parent=None),
        "channels": channels,
        "channel_labels": ", ".join(channel_label(c) for c in channels),
        "sent": unique(by_channel, "sent"),
        # None ("—") when no channel of the parent has a delivered step.
        "delivered": (
            unique(by_channel, "delivered")
            if any(channel_has(c, "delivered") for c in by_channel)
            else None
        ),
        **rates_for(by_channel),
    }
    row["sent_text"] = number(row["sent"])
    row["delivered_text"] = number(row["delivered"])
    row["rate_cells"] = rate_cells(row)
    return row


def _kind_label(kind: str) -> str:
    return ParentKind.LABELS.get(kind, kind)


def _kind_counts(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """How many campaigns, broadcasts, ... the table lists, by kind."""
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind_label"]] = kinds.get(row["kind_label"], 0) + 1
    return sorted(kinds.items())


def _dataset(rows: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "campaigns",
        ["kind", "id", "label", "channels", "sent", "delivered", *TABLE_RATES],
        [
            (
                row["kind"],
                row["parent_id"],
                row["name"],
                " ".join(row["channels"]),
                row["sent"],
                row["delivered"],
                *(row[key] for key in TABLE_RATES),
            )
            for row in rows
        ],
    )


def _comparison_chart(rows: list[dict[str, Any]]) -> Chart:
    top = [row for row in rows if row["sent"]][:TOP_PARENTS]
    return Chart(
        "comparison",
        f"Top {len(top)} by sent" if len(top) > 1 else "Sent",
        parent_comparison_figure(top),
        "campaigns",
        note="Bars: messages sent; markers: open and click rates. Click a bar to open it.",
    )
