"""What every figure shares: the house layout, and the step from traces to plotly.js JSON
(with a message in place of empty axes)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def layout(**extra: Any) -> dict[str, Any]:
    """The house layout, with ``extra`` keys replacing its own."""
    base: dict[str, Any] = {
        "font": {"family": FONT, "size": 12, "color": "#1f2937"},
        "margin": {"l": 56, "r": 16, "t": 16, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "xaxis": {"gridcolor": "#eef2f7", "zeroline": False},
        "yaxis": {"gridcolor": "#eef2f7", "zeroline": False, "rangemode": "tozero"},
        "height": 320,
    }
    base.update(extra)
    return base


def figure(data: list[Any], layout: dict[str, Any]) -> dict[str, Any]:
    """The figure as plotly.js reads it; with no data at all, a message instead of axes."""
    if all(_is_empty(trace) for trace in data):
        layout, data = _empty_layout(layout), []
    # to_plotly_json validates through plotly's schema, then gives plain JSON-ready data.
    built = go.Figure(data=data, layout=layout).to_plotly_json()
    return {"data": built["data"], "layout": built["layout"]}


def _is_empty(trace: Any) -> bool:
    values = [getattr(trace, axis, None) for axis in ("x", "y")]
    return all(not value for value in values if value is not None)


def _empty_layout(layout: dict[str, Any]) -> dict[str, Any]:
    # Empty axes with made-up ticks look broken; say what is going on instead.
    layout = {**layout, "height": min(layout.get("height", 320), 220)}
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    layout["annotations"] = [
        {
            "text": "No data for these filters: try a longer period or fewer filters",
            "showarrow": False,
            "font": {"size": 14, "color": "#6b7280"},
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
        }
    ]
    return layout
