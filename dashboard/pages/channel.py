"""One channel: its funnel, rates over time and failures (for subscription changes, their
counts over time)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import Http404
from django.urls import reverse

from dashboard import selectors
from dashboard.charts.funnels import steps_funnel_figure
from dashboard.charts.palette import CHANNEL_COLOURS
from dashboard.charts.series import rate_series_figure, stacked_series_figure
from dashboard.filters import Filters, channel_label
from dashboard.pages.formatting import count_change, number, percent
from dashboard.pages.funnels import funnel_steps
from dashboard.pages.page import Chart, Dataset, Page, Tile
from dashboard.pages.series import rates_over_time
from dashboard.pages.tables import (
    FAILURE_MESSAGE_COLUMNS,
    TABLE_RATES,
    failure_message_cells,
    failure_message_rows,
)
from dashboard.pages.tiles import kpi_tiles
from dashboard.pages.totals import event_count, possible_rates, raw, unique
from dashboard.rates import NO_DELIVERED_STEP, RATE_BY_KEY, MetricTotal, Totals, channel_has
from dashboard.selectors import SeriesPoint
from metrics_source.ingest.catalog import Channel

# Rates over time, in the order of charts.series.RATE_PALETTE (open green, click amber,
# conversion violet, delivery blue, bounce red, unsubscribe grey).
SERIES_RATES = (
    "open_rate",
    "click_rate",
    "conversion_rate",
    "delivery_rate",
    "bounce_rate",
    "unsubscribe_rate",
)
FAILURE_METRICS = (
    "bounced",
    "suppressed",
    "failed",
    "spammed",
    "undeliverable",
    "deferred",
)
# A person's choice, not a failure of the message: its own group in the table, and not in the
# failures chart (the subscriptions chart draws it over time).
OPT_OUT_METRICS = ("unsubscribed",)
# Bounces, suppressions and failures are counted against sent, the others against delivered,
# as Customer.io's rates are.
FAILURES_OF_SENT = frozenset({"bounced", "suppressed", "failed", "undeliverable", "deferred"})
SUBSCRIPTION_METRICS = ("subscribed", "unsubscribed", "preferences_changed")


def channel_page(filters: Filters, channel: str) -> Page:
    if channel not in {c.value for c in Channel}:
        raise Http404("no such channel")
    page = Page(title=f"{channel_label(channel)} channel", section="channels")
    # The URL names the channel: it wins over any channel in the query string.
    scoped = replace(filters, channel=channel)
    # One scan gives the series and the totals (see selectors.series_and_totals).
    points, current = selectors.series_and_totals(scoped)
    previous = selectors.totals_by_channel(scoped.previous())
    page.context.update(_heading(filters, channel, current, previous))
    if channel == Channel.SUBSCRIPTION.value:
        return _subscription_page(page, scoped, current, previous)
    _add_funnel(page, scoped, channel, current.get(channel, {}))
    _add_rates(page, channel, points)
    _add_failures_over_time(page, channel, points)
    _add_failure_totals(page, channel, current)
    _add_failure_messages(page, scoped)
    return page


def _heading(
    filters: Filters, channel: str, current: dict[str, Totals], previous: dict[str, Totals]
) -> dict[str, Any]:
    """The context above the charts: the channel's name, tiles and totals."""
    return {
        "hide_channel_filter": True,
        "channel": channel,
        "channel_label": channel_label(channel),
        "no_delivered_step": channel in NO_DELIVERED_STEP,
        "has_data": bool(current.get(channel, {})),
        "tiles": kpi_tiles(current, previous, {channel}),
        "totals": {
            "opens": number(raw(current, "opened")),
            "clicks": number(raw(current, "clicked")),
            "events": number(event_count(current.get(channel, {}))),
        },
        "channels_url": reverse("dashboard:channels") + filters.query(channel=None),
    }


# --- the funnel ----------------------------------------------------------------------------


def _add_funnel(page: Page, scoped: Filters, channel: str, totals: Totals) -> None:
    """Only the steps this channel reports."""
    steps = _funnel_steps(scoped, channel, totals)
    page.context["funnel_steps"] = steps
    page.add_dataset(
        Dataset(
            "funnel",
            ["step", "unique_deliveries", "share_of_sent"],
            [(s["metric"], s["count"], s["share"]) for s in steps],
        )
    )
    page.add_chart(
        Chart(
            "funnel",
            f"{channel_label(channel)} funnel",
            steps_funnel_figure(steps, colour=CHANNEL_COLOURS.get(channel, "")),
            "funnel",
            note="Each delivery counts once per step. Click a step to list its deliveries.",
        )
    )


def _funnel_steps(scoped: Filters, channel: str, totals: Totals) -> list[dict[str, Any]]:
    """Each step's unique deliveries, as a share of the first step too."""
    counts = {
        metric: totals[metric].deliveries if metric in totals else 0
        for metric in funnel_steps(channel)
    }
    first = next(iter(counts.values()), 0)
    return [_funnel_step(scoped, metric, count, first) for metric, count in counts.items()]


def _funnel_step(scoped: Filters, metric: str, count: int, first: int) -> dict[str, Any]:
    share = count / first if first else None
    return {
        "metric": metric,
        "label": metric.capitalize(),
        "count": count,
        "url": reverse("dashboard:deliveries") + scoped.query(reached=metric),
        "share": share,
        "count_text": number(count),
        "share_text": percent(share),
    }


# --- rates over time -----------------------------------------------------------------------


def _add_rates(page: Page, channel: str, points: list[SeriesPoint]) -> None:
    """Rates per interval, computed from the hourly counts: every rate the channel can report
    in the CSV, the SERIES_RATES among them on the chart."""
    possible = possible_rates({channel})
    keys = [key for key in TABLE_RATES if key in possible]
    starts, values = rates_over_time(points, channel, keys)
    iso = [start.isoformat() for start in starts]
    page.add_dataset(
        Dataset(
            "rates",
            ["interval_start", *keys],
            [(start, *(values[key][i] for key in keys)) for i, start in enumerate(iso)],
        )
    )
    page.add_chart(_rates_chart(iso, values, [key for key in SERIES_RATES if key in possible]))


def _rates_chart(iso: list[str], values: dict[str, list[float | None]], keys: list[str]) -> Chart:
    return Chart(
        "rates",
        "Rates over time",
        rate_series_figure(
            {key: (iso, values[key]) for key in keys},
            labels={key: RATE_BY_KEY[key].label for key in keys},
            right_axis=frozenset({"delivery_rate"}),
        ),
        "rates",
        note=(
            "Rates of each interval. With the event-time basis an interval's opens may "
            "come from messages sent earlier; choose “When the message was sent” for "
            "send-date cohorts."
        ),
    )


# --- failures ------------------------------------------------------------------------------


def _failure_metrics(channel: str) -> list[str]:
    return [metric for metric in FAILURE_METRICS if channel_has(channel, metric)]


def _add_failures_over_time(page: Page, channel: str, points: list[SeriesPoint]) -> None:
    """Unique deliveries per failure metric and interval."""
    metrics = _failure_metrics(channel)
    failure_points = [p for p in points if p.metric in metrics]
    page.add_dataset(_failure_series_dataset(failure_points))
    page.add_chart(_failures_chart(failure_points, metrics, points))


def _add_failure_totals(page: Page, channel: str, current: dict[str, Totals]) -> None:
    """Unique deliveries per failure (and opt-out) metric in the period, with their rates."""
    opt_outs = [metric for metric in OPT_OUT_METRICS if channel_has(channel, metric)]
    rows = [
        {**row, "group": "Failures"}
        for row in _failure_rows(channel, _failure_metrics(channel), current)
    ] + [{**row, "group": "Opt-outs"} for row in _failure_rows(channel, opt_outs, current)]
    page.context["failure_rows"] = rows
    page.add_dataset(
        Dataset(
            "failure_totals",
            ["group", "metric", "unique_deliveries", "events", "rate", "rate_of"],
            [
                (r["group"], r["metric"], r["deliveries"], r["events"], r["rate"], r["base"])
                for r in rows
            ],
        )
    )


def _add_failure_messages(page: Page, scoped: Filters) -> None:
    messages = failure_message_rows(selectors.failure_messages(scoped))
    page.context["failure_messages"] = messages
    page.add_dataset(
        Dataset(
            "failure_messages",
            FAILURE_MESSAGE_COLUMNS,
            [failure_message_cells(row) for row in messages],
        )
    )


def _failure_series_dataset(points: list[SeriesPoint]) -> Dataset:
    return Dataset(
        "failures",
        ["interval_start", "metric", "unique_deliveries", "events"],
        [(p.start.isoformat(), p.metric, p.deliveries, p.events) for p in points],
    )


def _failures_chart(
    failure_points: list[SeriesPoint], metrics: list[str], points: list[SeriesPoint]
) -> Chart:
    # Every interval with any activity gets its bar slot, as on the rates chart.
    starts = [start.isoformat() for start in sorted({point.start for point in points})]
    return Chart(
        "failures",
        "Failures over time",
        stacked_series_figure(failure_points, metrics=metrics, starts=starts),
        "failures",
        note="Deliveries that bounced, were suppressed, failed or were marked as spam, per "
        "interval (each delivery once per kind); unsubscribes, a person's choice, are opt-outs: "
        "in the table and the rates chart.",
    )


def _failure_rows(
    channel: str, metrics: list[str], current: dict[str, Totals]
) -> list[dict[str, Any]]:
    totals = current.get(channel, {})
    sent = unique(current, "sent")
    delivered = unique(current, "sent" if channel in NO_DELIVERED_STEP else "delivered")
    return [
        _failure_row(
            metric,
            totals.get(metric, MetricTotal()),
            base="sent" if metric in FAILURES_OF_SENT else "delivered",
            denominator=sent if metric in FAILURES_OF_SENT else delivered,
        )
        for metric in metrics
    ]


def _failure_row(metric: str, total: MetricTotal, *, base: str, denominator: int) -> dict:
    rate = total.deliveries / denominator if denominator else None
    return {
        "metric": metric,
        "label": metric.replace("_", " ").capitalize(),
        "deliveries": total.deliveries,
        "events": total.events,
        "rate": rate,
        "base": base,
        "deliveries_text": number(total.deliveries),
        "events_text": number(total.events),
        "rate_text": percent(rate, 2),
    }


# --- subscription changes ------------------------------------------------------------------


def _subscription_page(
    page: Page, scoped: Filters, current: dict[str, Totals], previous: dict[str, Totals]
) -> Page:
    """Subscription changes have no messages behind them: counts over time, no funnel."""
    tiles = [_subscription_tile(metric, current, previous) for metric in SUBSCRIPTION_METRICS]
    page.context.update({"tiles": tiles, "is_subscription": True})
    points = [p for p in selectors.metric_series(scoped) if p.metric in SUBSCRIPTION_METRICS]
    page.add_dataset(
        Dataset(
            "changes",
            ["interval_start", "metric", "events"],
            [(p.start.isoformat(), p.metric, p.events) for p in points],
        )
    )
    page.add_chart(
        Chart(
            "changes",
            "Subscription changes over time",
            stacked_series_figure(points, metrics=SUBSCRIPTION_METRICS, value="events"),
            "changes",
            note="People who subscribed, unsubscribed or changed their preferences.",
        )
    )
    return page


def _subscription_tile(
    metric: str, current: dict[str, Totals], previous: dict[str, Totals]
) -> Tile:
    now, before = unique(current, metric), unique(previous, metric)
    change, tone = count_change(now, before)
    if metric == "unsubscribed":
        tone = {"good": "bad", "bad": "good"}.get(tone, "")  # fewer unsubscribes is good news
    elif metric == "preferences_changed":
        tone = ""  # neither good nor bad news
    return Tile(metric.replace("_", " ").capitalize(), number(now), change, tone)
