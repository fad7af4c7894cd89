"""One person's deliveries per day, stacked by channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.figure import figure, layout
from dashboard.charts.palette import CHANNEL_COLOURS
from dashboard.filters import channel_label


def person_activity_figure(
    counts: dict[str, dict[str, int]], *, channels: Sequence[str]
) -> dict[str, Any]:
    """One person's deliveries per day (``counts``: day ISO -> channel -> deliveries), stacked
    by channel."""
    days = sorted(counts)
    busiest = max((sum(by_channel.values()) for by_channel in counts.values()), default=0)
    traces = [
        go.Bar(
            x=days,
            y=[counts[day].get(channel, 0) for day in days],
            name=channel_label(channel),
            marker={"color": CHANNEL_COLOURS.get(channel, "#6366f1")},
            hovertemplate="%{x|%b %d}: %{y} deliveries<extra>%{fullData.name}</extra>",
        )
        for channel in channels
    ]
    stacked = layout(
        hovermode="closest",
        barmode="stack",
        height=260,
        bargap=0.3,
        xaxis={"type": "date", "gridcolor": "#eef2f7", "zeroline": False},
        yaxis={
            "gridcolor": "#eef2f7",
            "rangemode": "tozero",
            "tickformat": "d",
            # Whole deliveries: no 0.5 ticks on a quiet person's chart.
            "dtick": 1 if busiest <= 6 else None,
        },
        legend={"orientation": "h", "y": -0.22, "x": 0},
    )
    return figure(traces, stacked)
