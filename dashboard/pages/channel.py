"""One channel: its funnel, rates over time and failures; and the list of channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.http import Http404
from django.urls import reverse

from dashboard import selectors
from dashboard.charts.comparison import channel_comparison_figure, grouped_bars_figure
from dashboard.charts.funnels import steps_funnel_figure
from dashboard.charts.palette import CHANNEL_COLOURS, METRIC_COLOURS
from dashboard.charts.series import rate_series_figure, stacked_series_figure
from dashboard.filters import Filters, channel_label
from dashboard.pages.common import (
    Chart,
    Dataset,
    Page,
    Tile,
    count_change,
    number,
    percent,
    rate_change,
)
from dashboard.pages.overview import funnel_steps, raw, unique
from dashboard.rates import (
    BAD_WHEN_UP,
    CHANNEL_METRICS,
    NO_DELIVERED_STEP,
    RATE_BY_KEY,
    RATES,
    MetricTotal,
    Totals,
    channel_has,
    human_rate,
    rates_for,
)
from dashboard.selectors import SeriesPoint
from metrics_source.ingest.catalog import Channel

# The rates every table shows, in order ("—" where the channel cannot report one).
TABLE_RATES = tuple(rate.key for rate in RATES)
# KPI tiles: the rates a reader looks at first (spam stays in the tables).
TILE_RATES = (
    "delivery_rate",
    "open_rate",
    "click_rate",
    "click_to_open",
    "conversion_rate",
    "bounce_rate",
    "unsubscribe_rate",
)
# Rates over time, in the order of charts.series.RATE_PALETTE (open green, click
# amber, conversion violet, delivery blue, bounce red, unsubscribe grey).
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
    "unsubscribed",
    "undeliverable",
    "deferred",
)
RATE_COLOURS = {
    "Open rate": METRIC_COLOURS["opened"],
    "Click rate": METRIC_COLOURS["clicked"],
    "Conversion rate": METRIC_COLOURS["converted"],
    "Bounce rate": METRIC_COLOURS["bounced"],
}


# --------------------------------------------------------------------------------------
# Shared by the channel and campaign pages
# --------------------------------------------------------------------------------------


def possible_rates(channels: Iterable[str]) -> set[str]:
    """The rates at least one of the channels can report (an SMS has no open rate)."""
    metrics = {metric for channel in channels for metric in CHANNEL_METRICS.get(channel, ())}
    return {rate.key for rate in RATES if rate.numerator in metrics}


def kpi_tiles(
    current: dict[str, Totals], previous: dict[str, Totals], channels: set[str]
) -> list[Tile]:
    """Sent, delivered and the rates the channels can report, each against the previous
    period, as on the overview."""
    tiles = []
    counts = ["sent"]
    if any(channel_has(channel, "delivered") for channel in channels):
        counts.append("delivered")
    for metric in counts:
        now, before = unique(current, metric), unique(previous, metric)
        change, tone = count_change(now, before)
        tiles.append(Tile(metric.capitalize(), number(now), change, tone))
    rates, previous_rates = rates_for(current), rates_for(previous)
    possible = possible_rates(channels)
    for key in TILE_RATES:
        if key not in possible:
            continue
        change, tone = rate_change(rates[key], previous_rates[key], bad_when_up=key in BAD_WHEN_UP)
        detail = ""
        if key == "open_rate":
            detail = f"human opens {percent(human_rate(current, 'opened'))}"
        elif key == "click_rate":
            detail = f"human clicks {percent(human_rate(current, 'clicked'))}"
        tiles.append(Tile(RATE_BY_KEY[key].label, percent(rates[key]), change, tone, detail))
    return tiles


def rate_cells(rates: Mapping[str, Any], keys: Sequence[str] = TABLE_RATES) -> list[dict]:
    """Table cells: the raw value for sorting, the text for reading."""
    return [{"raw": rates[key], "text": percent(rates[key])} for key in keys]


def series_by_interval(points: Sequence[SeriesPoint]) -> dict[datetime, Totals]:
    """Interval start -> metric -> unique deliveries, as totals rates_for can read."""
    out: dict[datetime, Totals] = {}
    for point in points:
        out.setdefault(point.start, {})[point.metric] = MetricTotal(
            events=point.events, deliveries=point.deliveries
        )
    return out


def rates_over_time(
    points: Sequence[SeriesPoint], channel: str, keys: Sequence[str]
) -> tuple[list[datetime], dict[str, list[float | None]]]:
    """Each rate per interval, by the same definitions as the tiles (None: nothing to divide
    by in that interval, drawn as a gap)."""
    by_interval = series_by_interval(points)
    starts = sorted(by_interval)
    values: dict[str, list[float | None]] = {key: [] for key in keys}
    for start in starts:
        rates = rates_for({channel: by_interval[start]})
        for key in keys:
            values[key].append(rates[key])
    return starts, values


def failure_message_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **row,
            "metric_label": row["metric"].replace("_", " ").capitalize(),
            "channel_label": channel_label(row["channel"]),
            "events_text": number(int(row["events"])),
        }
        for row in rows
    ]


# --------------------------------------------------------------------------------------
# The list of channels
# --------------------------------------------------------------------------------------


def channels_page(filters: Filters) -> Page:
    page = Page(title="Channels", section="channels")
    current = selectors.totals_by_channel(filters)
    page.context["has_data"] = bool(current) or selectors.has_events()

    rows: list[dict[str, Any]] = []
    for channel in Channel:
        totals = {channel.value: current.get(channel.value, {})}
        channel_rates = rates_for(totals)
        sent = unique(totals, "sent")
        has_delivered = channel_has(channel.value, "delivered")
        rows.append(
            {
                "channel": channel.value,
                "label": channel_label(channel.value),
                "url": reverse("dashboard:channel", args=[channel.value])
                + filters.query(channel=None),
                "sent": sent,
                "delivered": unique(totals, "delivered") if has_delivered else None,
                "opens": raw(totals, "opened"),
                "clicks": raw(totals, "clicked"),
                "events": sum(total.events for total in totals[channel.value].values()),
                "no_delivered_step": channel.value in NO_DELIVERED_STEP,
                **channel_rates,
            }
        )
    # Busiest first; channels with nothing in the period stay listed (each has a page).
    rows.sort(key=lambda row: (-row["sent"], -row["events"], row["label"]))
    for row in rows:
        row["sent_text"] = number(row["sent"])
        row["delivered_text"] = number(row["delivered"])
        row["events_text"] = number(row["events"])
        row["rate_cells"] = rate_cells(row)
    page.context["channel_rows"] = rows
    page.context["rate_labels"] = [RATE_BY_KEY[key].label for key in TABLE_RATES]
    page.context["channels_without_delivered"] = [
        channel_label(c.value) for c in Channel if c.value in NO_DELIVERED_STEP
    ]
    page.add_dataset(
        Dataset(
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
    )
    message_rows = [row for row in rows if row["channel"] != "subscription" and row["sent"]]
    page.add_chart(
        Chart(
            "channels",
            "Sent and engagement by channel",
            channel_comparison_figure(message_rows),
            "channels",
            note="Bars: messages sent; markers: open and click rates. Click a channel to open it.",
        )
    )
    rate_keys = ("open_rate", "click_rate", "conversion_rate", "bounce_rate")
    page.add_chart(
        Chart(
            "rates",
            "Rates by channel",
            grouped_bars_figure(
                [row["label"] for row in message_rows],
                {RATE_BY_KEY[key].label: [row[key] for row in message_rows] for key in rate_keys},
                colours=RATE_COLOURS,
                urls=[row["url"] for row in message_rows],
                percent=True,
            ),
            "channels",
            note="A missing bar: the channel cannot report that metric. Click to open a channel.",
        )
    )
    return page


# --------------------------------------------------------------------------------------
# One channel
# --------------------------------------------------------------------------------------


def channel_page(filters: Filters, channel: str) -> Page:
    if channel not in {c.value for c in Channel}:
        raise Http404("no such channel")
    label = channel_label(channel)
    page = Page(title=f"{label} channel", section="channels")
    # The URL names the channel: it wins over any channel in the query string.
    scoped = replace(filters, channel=channel)
    # One scan gives the series and the totals (see selectors.series_and_totals).
    points, current = selectors.series_and_totals(scoped)
    previous = selectors.totals_by_channel(scoped.previous())
    totals = current.get(channel, {})
    page.context.update(
        {
            "hide_channel_filter": True,
            "channel": channel,
            "channel_label": label,
            "no_delivered_step": channel in NO_DELIVERED_STEP,
            "has_data": bool(totals),
            "tiles": kpi_tiles(current, previous, {channel}),
            "totals": {
                "opens": number(raw(current, "opened")),
                "clicks": number(raw(current, "clicked")),
                "events": number(sum(total.events for total in totals.values())),
            },
            "channels_url": reverse("dashboard:channels") + filters.query(channel=None),
        }
    )

    if channel == Channel.SUBSCRIPTION.value:
        return _subscription_page(page, scoped, current, previous)

    # The funnel: only the steps this channel reports.
    steps: list[dict[str, Any]] = [
        {
            "metric": metric,
            "label": metric.capitalize(),
            "count": totals[metric].deliveries if metric in totals else 0,
            "url": reverse("dashboard:deliveries") + scoped.query(reached=metric),
        }
        for metric in funnel_steps(channel)
    ]
    first = steps[0]["count"] if steps else 0
    for step in steps:
        step["count_text"] = number(step["count"])
        step["share_text"] = percent(step["count"] / first if first else None)
    page.context["funnel_steps"] = steps
    page.add_dataset(
        Dataset(
            "funnel",
            ["step", "unique_deliveries", "share_of_sent"],
            [(s["metric"], s["count"], s["count"] / first if first else None) for s in steps],
        )
    )
    page.add_chart(
        Chart(
            "funnel",
            f"{label} funnel",
            steps_funnel_figure(steps, colour=CHANNEL_COLOURS.get(channel, "")),
            "funnel",
            note="Each delivery counts once per step. Click a step to list its deliveries.",
        )
    )

    # Rates over time, computed per interval from the hourly counts.
    possible = possible_rates({channel})
    keys = [key for key in SERIES_RATES if key in possible]
    all_keys = [key for key in TABLE_RATES if key in possible]
    starts, all_values = rates_over_time(points, channel, all_keys)
    page.add_dataset(
        Dataset(
            "rates",
            ["interval_start", *all_keys],
            [
                (start.isoformat(), *(all_values[key][i] for key in all_keys))
                for i, start in enumerate(starts)
            ],
        )
    )
    iso = [start.isoformat() for start in starts]
    page.add_chart(
        Chart(
            "rates",
            "Rates over time",
            rate_series_figure(
                {key: (iso, all_values[key]) for key in keys},
                labels={key: RATE_BY_KEY[key].label for key in keys},
            ),
            "rates",
            note=(
                "Rates of each interval. With the event-time basis an interval's opens may "
                "come from messages sent earlier; choose “When the message was sent” for "
                "send-date cohorts."
            ),
        )
    )

    # Failures: unique deliveries per failure metric, over time and in total.
    failure_metrics = [m for m in FAILURE_METRICS if channel_has(channel, m)]
    failure_points = [p for p in points if p.metric in failure_metrics]
    page.add_dataset(
        Dataset(
            "failures",
            ["interval_start", "metric", "unique_deliveries", "events"],
            [(p.start.isoformat(), p.metric, p.deliveries, p.events) for p in failure_points],
        )
    )
    page.add_chart(
        Chart(
            "failures",
            "Failures over time",
            stacked_series_figure(failure_points, metrics=failure_metrics, starts=iso),
            "failures",
            note="Deliveries that bounced, were suppressed, failed, were marked as spam or "
            "unsubscribed, per interval (each delivery once per kind).",
        )
    )
    sent = unique(current, "sent")
    base = unique(current, "sent" if channel in NO_DELIVERED_STEP else "delivered")
    failure_rows: list[dict[str, Any]] = []
    for metric in failure_metrics:
        total = totals.get(metric, MetricTotal())
        # Bounces, suppressions and failures are counted against sent, the others against
        # delivered, as Customer.io's rates are.
        over_sent = metric in ("bounced", "suppressed", "failed", "undeliverable", "deferred")
        denominator = sent if over_sent else base
        failure_rows.append(
            {
                "metric": metric,
                "label": metric.replace("_", " ").capitalize(),
                "deliveries": total.deliveries,
                "events": total.events,
                "rate": total.deliveries / denominator if denominator else None,
                "base": "sent" if over_sent else "delivered",
            }
        )
    for row in failure_rows:
        row["deliveries_text"] = number(row["deliveries"])
        row["events_text"] = number(row["events"])
        row["rate_text"] = percent(row["rate"], 2)
    page.context["failure_rows"] = failure_rows
    page.add_dataset(
        Dataset(
            "failure_totals",
            ["metric", "unique_deliveries", "events", "rate", "rate_of"],
            [
                (r["metric"], r["deliveries"], r["events"], r["rate"], r["base"])
                for r in failure_rows
            ],
        )
    )

    messages = failure_message_rows(selectors.failure_messages(scoped))
    page.context["failure_messages"] = messages
    page.add_dataset(
        Dataset(
            "failure_messages",
            ["metric", "message", "events"],
            [(row["metric"], row["message"], row["events"]) for row in messages],
        )
    )
    return page


SUBSCRIPTION_METRICS = ("subscribed", "unsubscribed", "preferences_changed")


def _subscription_page(
    page: Page, scoped: Filters, current: dict[str, Totals], previous: dict[str, Totals]
) -> Page:
    """Subscription changes have no messages behind them: counts over time, no funnel."""
    tiles = []
    for metric in SUBSCRIPTION_METRICS:
        now, before = unique(current, metric), unique(previous, metric)
        change, tone = count_change(now, before)
        if metric == "unsubscribed":
            tone = {"good": "bad", "bad": "good"}.get(tone, "")
        elif metric == "preferences_changed":
            tone = ""  # neither good nor bad news
        tiles.append(Tile(metric.replace("_", " ").capitalize(), number(now), change, tone))
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
