"""Stored timestamps as the pages can show them.

PostgreSQL keeps any timestamp the ingest accepted, right up to Python's own limits (years 1
and 9999). The pages then convert each to ``TIME_ZONE`` (up to a day either way), widen a
timeline around it, or count days from it, and every one of those steps overflows Python's
datetime at the very ends of its range. So every moment the dashboard reads is held at least
two days inside that range: an event stamped 9999-12-31 is drawn at 9999-12-29, its stored
JSON still says what was sent, and the page renders instead of failing for good.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# Room for the widest time zone offset (26 h), a timeline widened around its middle, and a
# day or week rounded down, with a margin.
MARGIN = timedelta(days=2)
EARLIEST_SHOWN = datetime.min.replace(tzinfo=UTC) + MARGIN
LATEST_SHOWN = datetime.max.replace(tzinfo=UTC) - MARGIN


def shown_moment(value: Any) -> Any:
    """An aware datetime held within [EARLIEST_SHOWN, LATEST_SHOWN]; anything else as is."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value
    return min(max(value, EARLIEST_SHOWN), LATEST_SHOWN)
