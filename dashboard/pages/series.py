"""Counts over time as the pages table them, and rates per interval worked out from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dashboard.pages.page import Dataset
from dashboard.rates import MetricTotal, Totals, rates_for
from dashboard.selectors import SeriesPoint

# The metrics drawn over time (the CSV has every metric).
SERIES_METRICS = ("sent", "delivered", "opened", "clicked", "converted", "bounced", "unsubscribed")
# The metrics with a human share (machine opens and clicks are told apart); for the others a
# human count does not apply, and the CSV leaves it empty rather than writing 0.
HUMAN_METRICS = frozenset({"opened", "clicked"})


def series_dataset(points: Sequence[SeriesPoint]) -> Dataset:
    """Unique deliveries per metric and interval; the CSV adds every event."""
    return Dataset(
        "series",
        ["interval_start", "metric", "unique_deliveries", "events", "human_deliveries"],
        [
            (
                p.start.isoformat(),
                p.metric,
                p.deliveries,
                p.events,
                p.human_deliveries if p.metric in HUMAN_METRICS else None,
            )
            for p in points
        ],
    )


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
