"""Figures over time: counts per metric as lines, rates as lines, counts as stacked bars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from dashboard.charts.figure import figure, layout
from dashboard.charts.palette import METRIC_COLOURS
from dashboard.selectors import SeriesPoint

# Lines of a rate series, in order (open green, click amber, conversion violet, delivery
# blue, bounce red, unsubscribe grey); pages list their rates in this order.
RATE_PALETTE = ("#10b981", "#f59e0b", "#8b5cf6", "#0ea5e9", "#ef4444", "#64748b")

Line = tuple[list[str], list[int]]


def series_figure(
    points: Sequence[SeriesPoint],
    *,
    metrics: Sequence[str],
    starts: Sequence[datetime] | None = None,
    value: str = "deliveries",
    label: Callable[[str], str] = lambda name: name.replace("_", " ").capitalize(),
    colours: dict[str, str] | None = None,
    unfinished: datetime | None = None,
) -> dict[str, Any]:
    """One line per metric (or channel) over time. ``unfinished`` is the start of the
    interval still going on (with ``starts``): its point is drawn dotted and called "so far",
    so a day half over does not look like a crash."""
    colours = colours or METRIC_COLOURS
    if starts is not None:
        lines = _lines_over_every_interval(points, metrics, starts, value)
    else:
        lines = _lines_over_points(points, metrics, value)
    partial = unfinished.isoformat() if unfinished is not None and starts is not None else None
    traces = []
    for name in metrics:
        if name not in lines:
            continue
        xs, ys = lines[name]
        style = {"color": colours.get(name), "width": 2}
        mode = "lines+markers" if len(xs) < 40 else "lines"
        cut = len(xs) - 1 if partial is not None and xs and xs[-1] == partial else len(xs)
        traces.append(
            go.Scatter(
                x=xs[:cut], y=ys[:cut], name=label(name), mode=mode, line=style,
                marker={"size": 5}, legendgroup=name,
            )
        )  # fmt: skip
        if cut < len(xs):
            traces.append(
                go.Scatter(
                    x=xs[max(cut - 1, 0) :], y=ys[max(cut - 1, 0) :],
                    name=f"{label(name)} (so far)", mode="lines+markers",
                    line={**style, "dash": "dot"}, marker={"size": 5, "symbol": "circle-open"},
                    legendgroup=name, showlegend=False,
                    hovertemplate="%{y:,} so far (interval not over)",
                )
            )  # fmt: skip
    return figure(traces, layout())


def _lines_over_every_interval(
    points: Sequence[SeriesPoint], metrics: Sequence[str], starts: Sequence[datetime], value: str
) -> dict[str, Line]:
    """Every interval of the period, zero where nothing happened (never a line drawn straight
    across a quiet night); only the metrics that happened at all."""
    values: dict[tuple[str, str], int] = {
        (point.metric, point.start.isoformat()): getattr(point, value) for point in points
    }
    present = {point.metric for point in points}
    labels = [start.isoformat() for start in starts]
    return {
        name: (labels, [values.get((name, label), 0) for label in labels])
        for name in metrics
        if name in present
    }


def _lines_over_points(
    points: Sequence[SeriesPoint], metrics: Sequence[str], value: str
) -> dict[str, Line]:
    """The intervals that have a point, in the points' order."""
    lines: dict[str, Line] = {}
    for point in points:
        if point.metric in metrics:
            xs, ys = lines.setdefault(point.metric, ([], []))
            xs.append(point.start.isoformat())
            ys.append(getattr(point, value))
    return lines


def rate_series_figure(
    series: dict[str, tuple[list[str], list[float | None]]],
    *,
    labels: dict[str, str],
    right_axis: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Rates (0..1) over time, one line per rate. Those in ``right_axis`` (a delivery rate
    near 100 %) get an axis of their own on the right, so the rates of a few percent beside
    them keep their shape instead of lying flat along zero."""
    traces = [
        go.Scatter(
            x=xs,
            y=ys,
            name=f"{labels[key]} (right axis)" if key in right_axis else labels[key],
            mode="lines",
            connectgaps=False,
            line={"color": RATE_PALETTE[index % len(RATE_PALETTE)], "width": 2},
            hovertemplate="%{y:.1%}",
            yaxis="y2" if key in right_axis else "y",
        )
        for index, (key, (xs, ys)) in enumerate(series.items())
    ]
    axes: dict[str, Any] = {
        "yaxis": {"tickformat": ".0%", "gridcolor": "#eef2f7", "rangemode": "tozero"}
    }
    if right_axis & series.keys():
        axes["margin"] = {"l": 56, "r": 52, "t": 16, "b": 40}  # room for the right ticks
        axes["yaxis2"] = {
            "tickformat": ".0%",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
        }
    return figure(traces, layout(**axes))


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
    stacked = layout(barmode="stack", bargap=0.25)
    if highest <= 5:
        stacked["yaxis"] = {**stacked["yaxis"], "dtick": 1}  # no "0.2 failures" ticks
    return figure(traces, stacked)
