"""One delivery's events on a time axis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.figure import figure, layout
from dashboard.charts.palette import METRIC_COLOURS

# The narrowest time axis a delivery's timeline gets: left to itself, plotly.js spreads a lone
# event (or a burst within a second) over ticks of a tenth of a millisecond.
SHORTEST_TIMELINE = timedelta(minutes=1)


def delivery_timeline_figure(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One delivery's events on a time axis, one row per metric in the order first reached.

    Each event: ``at`` (local time, ISO without offset: plotly.js shows it as written),
    ``metric``, ``event`` (its name), ``since`` ("2 h 5 min after sent") and ``machine``.
    Names are user data: escaped, because Plotly renders a subset of HTML in hover labels."""
    rows = list(dict.fromkeys(_row_label(event["metric"]) for event in events))
    trace = go.Scatter(
        x=[event["at"] for event in events],
        y=[_row_label(event["metric"]) for event in events],
        mode="markers+lines" if len(events) > 1 else "markers",
        line={"color": "#cbd5e1", "width": 1.5, "dash": "dot"},
        marker={
            "size": 15,
            "color": [METRIC_COLOURS.get(event["metric"], "#6366f1") for event in events],
            "symbol": ["circle-open" if event.get("machine") else "circle" for event in events],
            "line": {"color": "#ffffff", "width": 2},
        },
        text=[escape(event["since"]) for event in events],
        hovertext=[
            escape(event["event"]) + (" (machine)" if event.get("machine") else "")
            for event in events
        ],
        hovertemplate="<b>%{hovertext}</b><br>%{x|%Y-%m-%d %H:%M:%S}<br>%{text}<extra></extra>",
    )
    timeline = layout(
        hovermode="closest",
        height=max(180, 70 + 44 * len(rows)),
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(rows)),
            "automargin": True,
            "gridcolor": "#eef2f7",
        },
        xaxis=_time_axis([datetime.fromisoformat(event["at"]) for event in events]),
        margin={"l": 16, "r": 24, "t": 12, "b": 36},
        showlegend=False,
    )
    return figure([trace], timeline)


def _row_label(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def _time_axis(moments: list[datetime]) -> dict[str, Any]:
    """The events' span, widened to SHORTEST_TIMELINE around its middle when shorter."""
    axis: dict[str, Any] = {"gridcolor": "#eef2f7", "zeroline": False, "automargin": True}
    if moments and max(moments) - min(moments) < SHORTEST_TIMELINE:
        middle = min(moments) + (max(moments) - min(moments)) / 2
        half = SHORTEST_TIMELINE / 2
        ends = [(middle - half).isoformat(timespec="milliseconds"),
                (middle + half).isoformat(timespec="milliseconds")]  # fmt: skip
        axis |= {"type": "date", "range": ends}
    return axis
