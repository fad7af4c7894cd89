"""Plain data -> Plotly figures (as JSON-ready dicts for plotly.js).

Drill-down targets travel in each point's ``customdata`` as a URL; the page's script follows
it when the point is clicked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from dashboard.filters import channel_label
from dashboard.selectors import SeriesPoint

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
METRIC_COLOURS = {
    "sent": "#334155",
    "delivered": "#0ea5e9",
    "opened": "#10b981",
    "clicked": "#f59e0b",
    "converted": "#8b5cf6",
    "bounced": "#ef4444",
    "suppressed": "#f97316",
    "failed": "#b91c1c",
    "spammed": "#db2777",
    "unsubscribed": "#64748b",
    "undeliverable": "#a16207",
    "deferred": "#94a3b8",
    "subscribed": "#22c55e",
    "attempted": "#a5b4fc",
    "drafted": "#cbd5e1",
    "replied": "#14b8a6",
    "preferences_changed": "#84cc16",
}
CHANNEL_COLOURS = {
    "email": "#6366f1",
    "push": "#0ea5e9",
    "sms": "#10b981",
    "in_app": "#f59e0b",
    "webhook": "#8b5cf6",
    "slack": "#ec4899",
    "subscription": "#64748b",
    "whatsapp": "#22c55e",
}


def _layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
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
    layout.update(extra)
    return layout


def _is_empty(trace: Any) -> bool:
    values = [getattr(trace, axis, None) for axis in ("x", "y")]
    return all(not value for value in values if value is not None)


def _figure(data: list[Any], layout: dict[str, Any]) -> dict[str, Any]:
    if all(_is_empty(trace) for trace in data):
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
        data = []
    # to_plotly_json validates through plotly's schema, then gives plain JSON-ready data.
    figure = go.Figure(data=data, layout=layout).to_plotly_json()
    return {"data": figure["data"], "layout": figure["layout"]}


def series_figure(
    points: Sequence[SeriesPoint],
    *,
    metrics: Sequence[str],
    starts: Sequence[datetime] | None = None,
    value: str = "deliveries",
    label: Callable[[str], str] = lambda name: name.replace("_", " ").capitalize(),
    colours: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One line per metric (or channel) over time."""
    colours = colours or METRIC_COLOURS
    by_name: dict[str, tuple[list[Any], list[int]]] = {}
    if starts is not None:
        # Every interval of the period, zero where nothing happened (never a line drawn
        # straight across a quiet night).
        values: dict[tuple[str, str], int] = {
            (point.metric, point.start.isoformat()): getattr(point, value) for point in points
        }
        present = {point.metric for point in points}
        labels = [start.isoformat() for start in starts]
        for name in metrics:
            if name in present:
                by_name[name] = (labels, [values.get((name, label), 0) for label in labels])
    for point in points if starts is None else ():
        if point.metric in metrics:
            xs, ys = by_name.setdefault(point.metric, ([], []))
            xs.append(point.start.isoformat())
            ys.append(getattr(point, value))
    traces = [
        go.Scatter(
            x=by_name[name][0],
            y=by_name[name][1],
            name=label(name),
            mode="lines+markers" if len(by_name[name][0]) < 40 else "lines",
            line={"color": colours.get(name), "width": 2},
            marker={"size": 5},
        )
        for name in metrics
        if name in by_name
    ]
    return _figure(traces, _layout())


def rate_series_figure(
    series: dict[str, tuple[list[str], list[float | None]]], *, labels: dict[str, str]
) -> dict[str, Any]:
    """Rates (0..1) over time, one line per rate."""
    palette = ["#10b981", "#f59e0b", "#8b5cf6", "#0ea5e9", "#ef4444", "#64748b"]
    traces = [
        go.Scatter(
            x=xs,
            y=ys,
            name=labels[key],
            mode="lines",
            connectgaps=False,
            line={"color": palette[index % len(palette)], "width": 2},
            hovertemplate="%{y:.1%}",
        )
        for index, (key, (xs, ys)) in enumerate(series.items())
    ]
    return _figure(
        traces, _layout(yaxis={"tickformat": ".0%", "gridcolor": "#eef2f7", "rangemode": "tozero"})
    )


def _sent_and_rates(
    rows: Sequence[dict[str, Any]],
    *,
    names: list[str],
    hover: list[str],
    bar_colours: list[str] | str,
    marker_size: int,
    layout: dict[str, Any],
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
        for key, label, metric, symbol in (
            ("open_rate", "Open rate", "opened", "diamond"),
            ("click_rate", "Click rate", "clicked", "circle"),
        )
    ]
    base = _layout(
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
    return _figure([bar, *markers], {**base, **layout})


def channel_comparison_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent per channel with the open and click rates; a bar opens its channel."""
    names = [channel_label(row["channel"]) for row in rows]
    return _sent_and_rates(
        rows,
        names=names,
        hover=names,
        bar_colours=[CHANNEL_COLOURS.get(row["channel"], "#6366f1") for row in rows],
        marker_size=12,
        layout={},
    )


def funnel_figure(funnels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent -> delivered -> opened -> clicked -> converted, as a share of sent, one bar per
    channel at each step (channels differ too much in volume for stacked funnels); each bar
    links to the deliveries behind it."""
    traces = []
    for funnel in funnels:
        steps = funnel["steps"]
        sent = steps[0]["count"] or 1
        traces.append(
            go.Bar(
                name=channel_label(funnel["channel"]),
                x=[step["label"] for step in steps],
                y=[step["count"] / sent for step in steps],
                text=[f"{step['count']:,}" for step in steps],
                textposition="none",
                customdata=[step["url"] for step in steps],
                marker={"color": CHANNEL_COLOURS.get(funnel["channel"], "#6366f1")},
                hovertemplate="%{x}: %{text} (%{y:.1%} of sent)<extra>%{fullData.name}</extra>",
            )
        )
    layout = _layout(
        hovermode="closest",
        barmode="group",
        yaxis={"tickformat": ".0%", "gridcolor": "#eef2f7", "rangemode": "tozero"},
    )
    return _figure(traces, layout)


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
    layout = _layout(
        hovermode="closest",
        height=max(240, 70 + 52 * len(steps)),
        yaxis={"automargin": True},
        margin={"l": 16, "r": 16, "t": 8, "b": 16},
        showlegend=False,
    )
    return _figure([trace], layout)


def stacked_series_figure(
    points: Sequence[SeriesPoint],
    *,
    metrics: Sequence[str],
    starts: Sequence[str] = (),
    value: str = "deliveries",
) -> dict[str, Any]:
    """Stacked bars per interval, one colour per metric (failures broken down over time).

    ``starts`` (ISO interval starts) fills quiet intervals with zero, so sparse failures
    keep a bar width of one interval."""
    values: dict[str, dict[str, int]] = {}
    for point in points:
        if point.metric in metrics:
            values.setdefault(point.metric, {})[point.start.isoformat()] = getattr(point, value)
    xs = sorted(set(starts).union(*(v.keys() for v in values.values())))
    traces = [
        go.Bar(
            x=xs,
            y=[values[name].get(x, 0) for x in xs],
            name=name.replace("_", " ").capitalize(),
            marker={"color": METRIC_COLOURS.get(name)},
            hovertemplate="%{y:,}",
        )
        for name in metrics
        if name in values
    ]
    highest = max((sum(values[n].get(x, 0) for n in values) for x in xs), default=0)
    layout = _layout(barmode="stack", bargap=0.25)
    if highest <= 5:
        layout["yaxis"] = {**layout["yaxis"], "dtick": 1}  # no "0.2 failures" ticks
    return _figure(traces, layout)


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
    layout = _layout(
        hovermode="closest",
        barmode="group",
        height=height,
        yaxis={
            "gridcolor": "#eef2f7",
            "rangemode": "tozero",
            "tickformat": ".0%" if percent else "",
        },
    )
    return _figure(traces, layout)


def parent_comparison_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sent per campaign or message with its open and click rates; a bar opens it.

    Axis labels are short ("Campaign 12"); the hover shows the full label."""
    return _sent_and_rates(
        rows,
        names=[row["short"] for row in rows],
        hover=[row["label"] for row in rows],
        bar_colours="#6366f1",
        marker_size=11,
        layout={
            "height": 360,
            "xaxis": {"tickangle": -30, "automargin": True},
            "legend": {"orientation": "h", "y": 1.08, "x": 0},
            "margin": {"l": 64, "r": 56, "t": 24, "b": 40},
        },
    )


# The narrowest time axis a delivery's timeline gets: left to itself, plotly.js spreads a lone
# event (or a burst within a second) over ticks of a tenth of a millisecond.
SHORTEST_TIMELINE = timedelta(minutes=1)


def delivery_timeline_figure(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One delivery's events on a time axis, one row per metric in the order first reached.

    Each event: ``at`` (local time, ISO without offset: plotly.js shows it as written),
    ``metric``, ``event`` (its name), ``since`` ("2 h 5 min after sent") and ``machine``.
    Names are user data: escaped, because Plotly renders a subset of HTML in hover labels."""
    from html import escape

    def label(metric: str) -> str:
        return metric.replace("_", " ").capitalize()

    rows = list(dict.fromkeys(label(event["metric"]) for event in events))
    trace = go.Scatter(
        x=[event["at"] for event in events],
        y=[label(event["metric"]) for event in events],
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
    layout = _layout(
        hovermode="closest",
        height=max(180, 70 + 44 * len(rows)),
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(rows)),
            "automargin": True,
            "gridcolor": "#eef2f7",
        },
        xaxis=_timeline_axis([datetime.fromisoformat(event["at"]) for event in events]),
        margin={"l": 16, "r": 24, "t": 12, "b": 36},
        showlegend=False,
    )
    return _figure([trace], layout)


def _timeline_axis(moments: list[datetime]) -> dict[str, Any]:
    axis: dict[str, Any] = {"gridcolor": "#eef2f7", "zeroline": False, "automargin": True}
    if moments and max(moments) - min(moments) < SHORTEST_TIMELINE:
        middle = min(moments) + (max(moments) - min(moments)) / 2
        half = SHORTEST_TIMELINE / 2
        ends = [(middle - half).isoformat(timespec="milliseconds"),
                (middle + half).isoformat(timespec="milliseconds")]  # fmt: skip
        axis |= {"type": "date", "range": ends}
    return axis


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
    layout = _layout(
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
    return _figure(traces, layout)
