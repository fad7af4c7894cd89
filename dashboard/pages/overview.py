"""The overview: KPI tiles against the previous period, events over time, the channels
compared, and each channel's funnel."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from dashboard import selectors
from dashboard.charts.comparison import channel_comparison_figure
from dashboard.charts.funnels import funnel_figure
from dashboard.charts.series import series_figure
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
from dashboard.rates import (
    BAD_WHEN_UP,
    NO_DELIVERED_STEP,
    RATES,
    Totals,
    channel_has,
    delivered_base,
    human_rate,
    rates_for,
)

SERIES_METRICS = ("sent", "delivered", "opened", "clicked", "converted", "bounced", "unsubscribed")
TABLE_RATES = (
    "delivery_rate",
    "open_rate",
    "click_rate",
    "click_to_open",
    "conversion_rate",
    "bounce_rate",
    "unsubscribe_rate",
)
TILE_RATES = (
    "delivery_rate",
    "open_rate",
    "click_rate",
    "click_to_open",
    "conversion_rate",
    "bounce_rate",
    "unsubscribe_rate",
)


def unique(totals_by_channel: dict[str, Totals], metric: str) -> int:
    return sum(t[metric].deliveries for t in totals_by_channel.values() if metric in t)


def raw(totals_by_channel: dict[str, Totals], metric: str) -> int:
    return sum(t[metric].events for t in totals_by_channel.values() if metric in t)


def funnel_steps(channel: str) -> tuple[str, ...]:
    """The funnel steps a channel reports (no delivered step for in-app, webhook and Slack;
    no opens for SMS, webhook and Slack; no conversions for Slack)."""
    return tuple(
        step
        for step in ("sent", "delivered", "opened", "clicked", "converted")
        if channel_has(channel, step)
    )


def funnels(filters: Filters, current: dict[str, Totals]) -> list[dict]:
    out = []
    for channel, totals in sorted(
        current.items(), key=lambda item: -unique({item[0]: item[1]}, "sent")
    ):
        if channel == "subscription" or not unique({channel: totals}, "sent"):
            continue
        steps = []
        for metric in funnel_steps(channel):
            url = reverse("dashboard:deliveries") + filters.query(channel=channel, reached=metric)
            count = totals[metric].deliveries if metric in totals else 0
            steps.append(
                {"metric": metric, "label": metric.capitalize(), "count": count, "url": url}
            )
        out.append({"channel": channel, "steps": steps})
    return out


def overview_page(filters: Filters) -> Page:
    page = Page(title="Overview", section="overview")
    points, current = selectors.series_and_totals(filters)
    previous_filters = filters.previous()
    previous = selectors.totals_by_channel(previous_filters)
    # A previous period that starts before the first recorded activity is only partly known:
    # comparing with it would show +70,000 %, so no change is shown instead.
    first = selectors.first_activity(filters)
    comparable = first is not None and first <= previous_filters.start
    if not comparable:
        previous = {}
    rates, previous_rates = rates_for(current), rates_for(previous)

    tiles = []
    for metric in ("sent", "delivered"):
        if not any(channel_has(channel, metric) for channel in current):
            tiles.append(Tile(metric.capitalize(), "—"))  # e.g. Slack alone: no delivered step
            continue
        now, before = unique(current, metric), unique(previous, metric)
        change, tone = count_change(now, before) if comparable else ("", "")
        tiles.append(Tile(metric.capitalize(), number(now), change, tone))
    labels = {rate.key: rate.label for rate in RATES}
    for key in TILE_RATES:
        change, tone = rate_change(rates[key], previous_rates[key], bad_when_up=key in BAD_WHEN_UP)
        detail = ""
        if key == "open_rate" and rates[key] is not None:
            detail = f"human opens {percent(human_rate(current, 'opened'))}"
        elif key == "click_rate" and rates[key] is not None:
            detail = f"human clicks {percent(human_rate(current, 'clicked'))}"
        tiles.append(Tile(labels[key], percent(rates[key]), change, tone, detail))
    page.context["tiles"] = tiles
    page.context["comparable"] = comparable
    subscription = current.get("subscription", {})
    page.context["totals"] = {
        "opens": number(raw(current, "opened")),
        "clicks": number(raw(current, "clicked")),
        "subscribed": number(unique({"s": subscription}, "subscribed")),
        "unsubscribed": number(unique({"s": subscription}, "unsubscribed")),
        "preferences_changed": number(unique({"s": subscription}, "preferences_changed")),
        "has_subscription": bool(subscription),
        "delivered_base": delivered_base(current),
    }
    page.context["has_data"] = bool(current) or selectors.has_events()
    page.context["channels_without_delivered"] = sorted(
        channel_label(c) for c in current if c in NO_DELIVERED_STEP
    )

    # Events over time, unique deliveries per metric.
    page.add_dataset(
        Dataset(
            "series",
            ["interval_start", "metric", "unique_deliveries", "events", "human_deliveries"],
            [
                (p.start.isoformat(), p.metric, p.deliveries, p.events, p.human_deliveries)
                for p in points
            ],
        )
    )
    page.add_chart(
        Chart(
            "series",
            "Events over time",
            series_figure(points, metrics=SERIES_METRICS, starts=filters.interval_starts()),
            "series",
            note="Unique deliveries per metric in each interval; the CSV adds every event.",
        )
    )

    # Channels compared.
    rows: list[dict[str, Any]] = []
    for channel, totals in sorted(current.items()):
        if channel == "subscription":
            continue  # no messages: its changes are summed up under the table
        channel_rates = rates_for({channel: totals})
        rows.append(
            {
                "channel": channel,
                "label": channel_label(channel),
                "url": reverse("dashboard:channel", args=[channel]) + filters.query(channel=None),
                "sent": unique({channel: totals}, "sent"),
                "delivered": (
                    unique({channel: totals}, "delivered")
                    if channel_has(channel, "delivered")
                    else None
                ),
                **channel_rates,
            }
        )
        rows[-1]["sent_text"] = number(rows[-1]["sent"])
        rows[-1]["delivered_text"] = number(rows[-1]["delivered"])
        rows[-1]["rate_cells"] = [
            {"raw": channel_rates[key], "text": percent(channel_rates[key])} for key in TABLE_RATES
        ]
    message_rows = [row for row in rows if row["channel"] != "subscription" and row["sent"]]
    page.context["channel_rows"] = rows
    page.add_dataset(
        Dataset(
            "channels",
            ["channel", "sent", "delivered", *(rate.key for rate in RATES)],
            [
                (row["channel"], row["sent"], row["delivered"], *(row[rate.key] for rate in RATES))
                for row in rows
            ],
        )
    )
    page.add_chart(
        Chart(
            "channels",
            "Channels compared",
            channel_comparison_figure(message_rows),
            "channels",
            note="Click a channel to open it.",
        )
    )

    # Funnels.
    channel_funnels = funnels(filters, current)
    page.add_dataset(
        Dataset(
            "funnel",
            ["channel", "step", "unique_deliveries"],
            [(f["channel"], s["metric"], s["count"]) for f in channel_funnels for s in f["steps"]],
        )
    )
    page.add_chart(
        Chart(
            "funnel",
            "Funnel by channel (share of sent)",
            funnel_figure(channel_funnels),
            "funnel",
            note="Click a step to list its deliveries.",
        )
    )
    return page
