"""Funnels: each channel's steps as a share of sent, side by side; and one funnel with its
counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.figure import figure, layout
from dashboard.charts.palette import CHANNEL_COLOURS, METRIC_COLOURS
from dashboard.filters import channel_label


def funnel_figure(funnels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent -> delivered -> opened -> clicked -> converted, as a share of sent, one bar per
    channel at each step (channels differ too much in volume for stacked funnels); each bar
    links to the deliveries behind it."""
    traces = [_channel_bars(funnel) for funnel in funnels]
    grouped = layout(
        hovermode="closest",
        barmode="group",
        yaxis={"tickformat": ".0%", "gridcolor": "#eef2f7", "rangemode": "tozero"},
    )
    return figure(traces, grouped)


def _channel_bars(funnel: dict[str, Any]) -> go.Bar:
    steps = funnel["steps"]
    sent = steps[0]["count"] or 1
    return go.Bar(
        name=channel_label(funnel["channel"]),
        x=[step["label"] for step in steps],
        y=[step["count"] / sent for step in steps],
        text=[f"{step['count']:,}" for step in steps],
        textposition="none",
        customdata=[step["url"] for step in steps],
        marker={"color": CHANNEL_COLOURS.get(funnel["channel"], "#6366f1")},
        hovertemplate="%{x}: %{text} (%{y:.1%} of sent)<extra>%{fullData.name}</extra>",
    )


def steps_funnel_figure(steps: Sequence[dict[str, Any]], *, colour: str) -> dict[str, Any]:
    """One funnel (sent -> ... -> converted) with each step's count and share of the first;
    each step links to the deliveries behind it."""
    trace = go.Funnel(
        y=[step["label"] for step in steps],
        x=[step["count"] for step in steps],
        customdata=[step["url"] for step in steps],
        textinfo="value+percent initial",
        texttemplate="%{value:,} · %{percentInitial:.1%}",
        marker={"color": [METRIC_COLOURS.get(step["metric"], colour) for step in steps]},
        connector={"fillcolor": "#eef2f7", "line": {"width": 0}},
        hovertemplate="%{y}: %{x:,} (%{percentInitial:.1%} of the first step)<extra></extra>",
    )
    one_funnel = layout(
        hovermode="closest",
        height=max(240, 70 + 52 * len(steps)),
        yaxis={"automargin": True},
        margin={"l": 16, "r": 16, "t": 8, "b": 16},
        showlegend=False,
    )
    return figure([trace], one_funnel)
