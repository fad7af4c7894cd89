"""Funnels by channel (sent, delivered, opened, clicked, converted), each step linking to its
deliveries: the rows, their table and their chart."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from dashboard.charts.funnels import funnel_figure
from dashboard.filters import Filters
from dashboard.pages.page import Chart, Dataset
from dashboard.pages.totals import unique
from dashboard.rates import Totals, channel_has

FUNNEL_METRICS = ("sent", "delivered", "opened", "clicked", "converted")


def funnel_steps(channel: str) -> tuple[str, ...]:
    """The funnel steps a channel reports (no delivered step for in-app, webhook and Slack;
    no opens for SMS, webhook and Slack; no conversions for Slack)."""
    return tuple(step for step in FUNNEL_METRICS if channel_has(channel, step))


def funnels_by_channel(filters: Filters, current: dict[str, Totals]) -> list[dict[str, Any]]:
    """One funnel per channel that sent messages, busiest first."""
    return [
        {"channel": channel, "steps": _steps(filters, channel, totals)}
        for channel, totals in sorted(
            current.items(), key=lambda item: -unique({item[0]: item[1]}, "sent")
        )
        if channel != "subscription" and unique({channel: totals}, "sent")
    ]


def _steps(filters: Filters, channel: str, totals: Totals) -> list[dict[str, Any]]:
    return [
        {
            "metric": metric,
            "label": metric.capitalize(),
            "count": totals[metric].deliveries if metric in totals else 0,
            "url": reverse("dashboard:deliveries") + filters.query(channel=channel, reached=metric),
        }
        for metric in funnel_steps(channel)
    ]


def funnels_dataset(funnels: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        "funnel",
        ["channel", "step", "unique_deliveries"],
        [(f["channel"], s["metric"], s["count"]) for f in funnels for s in f["steps"]],
    )


def funnels_chart(funnels: list[dict[str, Any]], *, title: str) -> Chart:
    return Chart(
        "funnel",
        title,
        funnel_figure(funnels),
        "funnel",
        note="Click a step to list its deliveries.",
    )
