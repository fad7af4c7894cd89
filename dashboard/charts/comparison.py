"""Bars side by side: channels or campaigns by sent with their open and click rates, and
grouped bars (rates per channel, counts per action)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.figure import figure, layout
from dashboard.charts.palette import CHANNEL_COLOURS, METRIC_COLOURS
from dashboard.filters import channel_label

# The rates drawn as markers over the sent bars: (row key, legend, metric, marker symbol).
RATE_MARKERS = (
    ("open_rate", "Open rate", "opened", "diamond"),
    ("click_rate", "Click rate", "clicked", "circle"),
)


def channel_comparison_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent per channel with the open and click rates; a bar opens its channel."""
    names = [channel_label(row["channel"]) for row in rows]
    return _sent_and_rates(
        rows,
        names=names,
        hover=names,
        bar_colours=[CHANNEL_COLOURS.get(row["channel"], "#6366f1") for row in rows],
        marker_size=12,
        layout_changes={},
    )


def parent_comparison_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent per campaign or message with its open and click rates; a bar opens it.

    Axis labels are short ("Campaign 12"); the hover shows the full label, escaped: it holds
    the first subject seen, which is event data, and Plotly renders a subset of HTML there."""
    return _sent_and_rates(
        rows,
        names=[row["short"] for row in rows],
        hover=[escape(row["label"]) for row in rows],
        bar_colours="#6366f1",
        marker_size=11,
        layout_changes={
            "height": 360,
            "xaxis": {"tickangle": -30, "automargin": True},
            "legend": {"orientation": "h", "y": 1.08, "x": 0},
            "margin": {"l": 64, "r": 56, "t": 24, "b": 40},
        },
    )


def _sent_and_rates(
    rows: Sequence[dict[str, Any]],
    *,
    names: list[str],
    hover: list[str],
    bar_colours: list[str] | str,
    marker_size: int,
    layout_changes: dict[str, Any],
) -> dict[str, Any]:
    """Sent (bars, left axis) with the open and click rates (markers, right axis); every
    element carries its row's URL, so a click opens it."""
    urls = [row["url"] for row in rows]
    bar = go.Bar(
        x=names,
        y=[row["sent"] for row in rows],
        name="Sent",
        marker={"color": bar_colours},
        customdata=urls,
        text=hover,
        textposition="none",
        hovertemplate="%{text}: %{y:,} sent<extra></extra>",
    )
    markers = [
        go.Scatter(
            x=names,
            y=[row[key] for row in rows],
            name=label,
            yaxis="y2",
            mode="markers",
            marker={"size": marker_size, "color": METRIC_COLOURS[metric], "symbol": symbol},
            customdata=urls,
            text=hover,
            hovertemplate="%{text}: %{y:.1%} " + metric + "<extra></extra>",
        )
        for key, label, metric, symbol in RATE_MARKERS
    ]
    return figure([bar, *markers], {**_two_axes_layout(), **layout_changes})


def _two_axes_layout() -> dict[str, Any]:
    """Counts on the left axis, rates on the right."""
    return layout(
        hovermode="closest",
        yaxis={"title": {"text": "Sent"}, "gridcolor": "#eef2f7", "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "Rate"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "rangemode": "tozero",
            "showgrid": False,
        },
        margin={"l": 64, "r": 56, "t": 16, "b": 40},
    )


def grouped_bars_figure(
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    colours: dict[str, str],
    urls: Sequence[str] | None = None,
    percent: bool = False,
    height: int = 320,
) -> dict[str, Any]:
    """Bars grouped by category, one colour per series (rates per channel, counts per
    action); every bar of a category may link to it."""
    fmt = ".1%" if percent else ",.0f"
    traces = [
        go.Bar(
            x=list(categories),
            y=list(values),
            name=name,
            marker={"color": colours.get(name)},
            customdata=list(urls) if urls else None,
            hovertemplate=f"%{{x}}: %{{y:{fmt}}}<extra>{name}</extra>",
        )
        for name, values in series.items()
    ]
    grouped = layout(
        hovermode="closest",
        barmode="group",
        height=height,
        yaxis={
            "gridcolor": "#eef2f7",
            "rangemode": "tozero",
            "tickformat": ".0%" if percent else "",
        },
    )
    return figure(traces, grouped)
