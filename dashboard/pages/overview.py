"""The overview: KPI tiles against the previous period, events over time, the channels
compared, and each channel's funnel."""

from __future__ import annotations

from typing import Any

from dashboard import selectors
from dashboard.charts.comparison import channel_comparison_figure
from dashboard.charts.series import series_figure
from dashboard.filters import Filters, channel_label
from dashboard.pages.formatting import number
from dashboard.pages.funnels import funnels_by_channel, funnels_chart, funnels_dataset
from dashboard.pages.page import Chart, Dataset, Page, Tile
from dashboard.pages.series import SERIES_METRICS, series_dataset
from dashboard.pages.tables import channel_row, rate_cells, sending_rows
from dashboard.pages.tiles import TILE_RATES, count_tile, rate_detail, rate_tile
from dashboard.pages.totals import raw, unique
from dashboard.rates import NO_DELIVERED_STEP, RATES, Totals, channel_has, delivered_base, rates_for
from dashboard.selectors import SeriesPoint

# The channels table has a column per tile rate (spam is in its CSV).
TABLE_RATES = TILE_RATES


def overview_page(filters: Filters) -> Page:
    page = Page(title="Overview", section="overview")
    points, current = selectors.series_and_totals(filters)
    previous, comparable = _previous_totals(filters)
    page.context["tiles"] = _tiles(current, previous, comparable=comparable)
    page.context["comparable"] = comparable
    page.context["totals"] = _totals_line(current)
    page.context["has_data"] = bool(current) or selectors.has_events()
    page.context["channels_without_delivered"] = sorted(
        channel_label(c) for c in current if c in NO_DELIVERED_STEP
    )

    page.add_dataset(series_dataset(points))
    page.add_chart(_series_chart(filters, points))

    rows = _channel_rows(filters, current)
    page.context["channel_rows"] = rows
    page.add_dataset(_channels_dataset(rows))
    page.add_chart(_channels_chart(rows))

    channel_funnels = funnels_by_channel(filters, current)
    page.add_dataset(funnels_dataset(channel_funnels))
    page.add_chart(funnels_chart(channel_funnels, title="Funnel by channel (share of sent)"))
    return page


# --- tiles ---------------------------------------------------------------------------------


def _previous_totals(filters: Filters) -> tuple[dict[str, Totals], bool]:
    """The previous period's totals, and whether the tiles compare with them.

    A previous period that starts before the first recorded activity is only partly known:
    comparing with it would show +70,000 %, so no change is shown instead."""
    previous_filters = filters.previous()
    previous = selectors.totals_by_channel(previous_filters)
    first = selectors.first_activity(filters)
    comparable = first is not None and first <= previous_filters.start
    return (previous if comparable else {}), comparable


def _tiles(
    current: dict[str, Totals], previous: dict[str, Totals], *, comparable: bool
) -> list[Tile]:
    """Sent, delivered and every tile rate, whatever the channels can report."""
    rates, previous_rates = rates_for(current), rates_for(previous)
    counts = [
        _count_tile(metric, current, previous, comparable) for metric in ("sent", "delivered")
    ]
    return counts + [
        rate_tile(
            key,
            rates,
            previous_rates,
            detail=rate_detail(key, current) if rates[key] is not None else "",
        )
        for key in TILE_RATES
    ]


def _count_tile(
    metric: str, current: dict[str, Totals], previous: dict[str, Totals], comparable: bool
) -> Tile:
    if not any(channel_has(channel, metric) for channel in current):
        return Tile(metric.capitalize(), "—")  # e.g. Slack alone: no delivered step
    return count_tile(metric, current, previous, compared=comparable)


def _totals_line(current: dict[str, Totals]) -> dict[str, Any]:
    """Every open and click, and the subscription changes, under the channels table."""
    subscription = {"s": current.get("subscription", {})}
    return {
        "opens": number(raw(current, "opened")),
        "clicks": number(raw(current, "clicked")),
        "subscribed": number(unique(subscription, "subscribed")),
        "unsubscribed": number(unique(subscription, "unsubscribed")),
        "preferences_changed": number(unique(subscription, "preferences_changed")),
        "has_subscription": bool(subscription["s"]),
        "delivered_base": delivered_base(current),
    }


# --- events over time ----------------------------------------------------------------------


def _series_chart(filters: Filters, points: list[SeriesPoint]) -> Chart:
    return Chart(
        "series",
        "Events over time",
        series_figure(
            points,
            metrics=SERIES_METRICS,
            starts=filters.interval_starts(),
            unfinished=filters.unfinished_interval(),
        ),
        "series",
        note="Unique deliveries per metric in each interval; the CSV adds every event.",
    )


# --- channels compared ---------------------------------------------------------------------


def _channel_rows(filters: Filters, current: dict[str, Totals]) -> list[dict[str, Any]]:
    """One row per channel with activity; subscription changes have no messages, so they are
    summed up under the table instead."""
    rows = []
    for channel, totals in sorted(current.items()):
        if channel == "subscription":
            continue
        row = channel_row(filters, channel, totals)
        row["sent_text"] = number(row["sent"])
        row["delivered_text"] = number(row["delivered"])
        row["rate_cells"] = rate_cells(row, TABLE_RATES)
        rows.append(row)
    return rows


def _channels_dataset(rows: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "channels",
        ["channel", "sent", "delivered", *(rate.key for rate in RATES)],
        [
            (row["channel"], row["sent"], row["delivered"], *(row[rate.key] for rate in RATES))
            for row in rows
        ],
    )


def _channels_chart(rows: list[dict[str, Any]]) -> Chart:
    return Chart(
        "channels",
        "Channels compared",
        channel_comparison_figure(sending_rows(rows)),
        "channels",
        note="Click a channel to open it.",
    )
