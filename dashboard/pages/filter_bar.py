"""The filter bar's choices, with the current values selected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from dashboard import selectors
from dashboard.filters import (
    BASIS_LABELS,
    EARLIEST_CUSTOM_DATE,
    INTERVALS,
    LIFETIME,
    LIFETIME_LABEL,
    PERIODS,
    Filters,
    channel_label,
    parent_label,
)
from metrics_source.ingest.catalog import Channel


def filter_options(filters: Filters) -> dict[str, Any]:
    """Choices for the filter bar, with the current values selected."""
    parents = selectors.parents()
    sources = selectors.source_names()
    return {
        # A parent's own page offers its lifetime first (and defaults to it).
        "periods": ([(LIFETIME, LIFETIME_LABEL)] if filters.default_period == LIFETIME else [])
        + [(key, label) for key, (label, _) in PERIODS.items()]
        + [("custom", "Custom dates")],
        "default_period": filters.default_period,
        "intervals": [(key, key.capitalize()) for key in INTERVALS],
        "bases": list(BASIS_LABELS.items()),
        "channels": [(c.value, channel_label(c.value)) for c in Channel],
        "parents": sorted(
            (
                (f"{kind}:{pid}", parent_label(kind, pid, row["label"]))
                for (kind, pid), row in parents.items()
            ),
            key=lambda item: item[1],
        ),
        "sources": sorted(sources.items(), key=lambda item: item[1]),
        "custom_from": filters.params().get("from", ""),
        "custom_to": filters.params().get("to", ""),
        # The dates a custom period may use (the browser's date picker offers no others).
        "custom_min": EARLIEST_CUSTOM_DATE.isoformat(),
        "custom_max": (timezone.localdate() + timedelta(days=1)).isoformat(),
    }
