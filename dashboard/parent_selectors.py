"""Reads for the campaign list: per-parent totals split by channel, from the hourly counts.

Rates need the channel (a channel without a "delivered" step uses sent in its place), so the
totals keep it.
"""

from __future__ import annotations

from dashboard.filters import Filters
from dashboard.rates import MetricTotal, Totals
from dashboard.selectors import _SUMS, COUNTS, _rows, _where

ParentKey = tuple[str, int]


def totals_by_parent_channel(filters: Filters) -> dict[ParentKey, dict[str, Totals]]:
    """(parent kind, parent id) -> channel -> metric -> totals, for every parent active in
    the period (one query over the hourly counts)."""
    where, params = _where(filters)
    # Only table names and the filters' own placeholders are interpolated; values are params.
    sql = (
        f"SELECT parent_kind, parent_id, channel, metric, {_SUMS} FROM {COUNTS} "
        f"WHERE {where} AND parent_kind <> '' GROUP BY 1, 2, 3, 4"
    )
    out: dict[ParentKey, dict[str, Totals]] = {}
    for kind, parent_id, channel, metric, *sums in _rows(sql, params):
        by_channel = out.setdefault((kind, int(parent_id)), {})
        by_channel.setdefault(channel, {})[metric] = MetricTotal(*(int(v) for v in sums))
    return out
