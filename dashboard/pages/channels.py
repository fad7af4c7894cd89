"""The list of channels: every channel with its counts and rates, compared in two charts."""

from __future__ import annotations

from typing import Any

from dashboard import selectors
from dashboard.charts.comparison import channel_comparison_figure, grouped_bars_figure
from dashboard.charts.palette import METRIC_COLOURS
from dashboard.filters import Filters, channel_label
from dashboard.pages.formatting import number
from dashboard.pages.page import Chart, Dataset, Page
from dashboard.pages.tables import TABLE_RATES, channel_row, rate_cells, sending_rows
from dashboard.pages.totals import event_count, raw
from dashboard.rates import NO_DELIVERED_STEP, RATE_BY_KEY, Totals
from metrics_source.ingest.catalog import Channel

# The rates compared per channel, each in its metric's colour.
COMPARED_RATES = ("open_rate", "click_rate", "conversion_rate", "bounce_rate")
RATE_COLOURS = {
    "Open rate": METRIC_COLOURS["opened"],
    "Click rate": METRIC_COLOURS["clicked"],
    "Conversion rate": METRIC_COLOURS["converted"],
    "Bounce rate": METRIC_COLOURS["bounced"],
}


def channels_page(filters: Filters) -> Page:
    page = Page(title="Channels", section="channels")
    current = selectors.totals_by_channel(filters)
    page.context["has_data"] = bool(current) or selectors.has_events()

    rows = _rows(filters, current)
    page.context["channel_rows"] = rows
    page.context["rate_labels"] = [RATE_BY_KEY[key].label for key in TABLE_RATES]
    page.context["channels_without_delivered"] = [
        channel_label(c.value) for c in Channel if c.value in NO_DELIVERED_STEP
    ]
    page.add_dataset(_dataset(rows))
    page.add_chart(_comparison_chart(rows))
    page.add_chart(_rates_chart(rows))
    return page


def _rows(filters: Filters, current: dict[str, Totals]) -> list[dict[str, Any]]:
    """Every channel, busiest first; channels with nothing in the period stay listed (each
    has a page)."""
    rows = [_row(filters, channel.value, current.get(channel.value, {})) for channel in Channel]
    rows.sort(key=lambda row: (-row["sent"], -row["events"], row["label"]))
    return rows


def _row(filters: Filters, channel: str, totals: Totals) -> dict[str, Any]:
    by_channel = {channel: totals}
    row = channel_row(filters, channel, totals) | {
        "opens": raw(by_channel, "opened"),
        "clicks": raw(by_channel, "clicked"),
        "events": event_count(totals),
        "no_delivered_step": channel in NO_DELIVERED_STEP,
    }
    row["sent_text"] = number(row["sent"])
    row["delivered_text"] = number(row["delivered"])
    row["events_text"] = number(row["events"])
    row["rate_cells"] = rate_cells(row)
    return row


def _dataset(rows: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "channels",
        ["channel", "sent", "delivered", "events", *TABLE_RATES],
        [
            (
                row["channel"],
                row["sent"],
                row["delivered"],
                row["events"],
                *(row[key] for key in TABLE_RATES),
            )
            for row in rows
        ],
    )


def _comparison_chart(rows: list[dict[str, Any]]) -> Chart:
    return Chart(
        "channels",
        "Sent and engagement by channel",
        channel_comparison_figure(sending_rows(rows)),
        "channels",
        note="Bars: messages sent; markers: open and click rates. Click a channel to open it.",
    )


def _rates_chart(rows: list[dict[str, Any]]) -> Chart:
    shown = sending_rows(rows)
    return Chart(
        "rates",
        "Rates by channel",
        grouped_bars_figure(
            [row["label"] for row in shown],
            {RATE_BY_KEY[key].label: [row[key] for row in shown] for key in COMPARED_RATES},
            colours=RATE_COLOURS,
            urls=[row["url"] for row in shown],
            percent=True,
        ),
        "channels",
        note="A missing bar: the channel cannot report that metric. Click to open a channel.",
    )
