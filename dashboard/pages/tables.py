"""Rows and cells that more than one page's tables show: a channel's row, rate cells, failure
messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.urls import reverse

from dashboard.filters import Filters, channel_label
from dashboard.pages.formatting import number, percent
from dashboard.pages.totals import unique
from dashboard.rates import RATES, Totals, channel_has, rates_for

# The rates every table of channels or campaigns shows, in order ("—" where none can be had).
TABLE_RATES = tuple(rate.key for rate in RATES)


def rate_cells(rates: Mapping[str, Any], keys: Sequence[str] = TABLE_RATES) -> list[dict]:
    """Table cells: the raw value for sorting, the text for reading."""
    return [{"raw": rates[key], "text": percent(rates[key])} for key in keys]


def channel_row(filters: Filters, channel: str, totals: Totals) -> dict[str, Any]:
    """A channel in a table of channels: its link, sent, delivered (None for a channel with no
    delivered step) and every rate."""
    by_channel = {channel: totals}
    return {
        "channel": channel,
        "label": channel_label(channel),
        "url": reverse("dashboard:channel", args=[channel]) + filters.query(channel=None),
        "sent": unique(by_channel, "sent"),
        "delivered": (
            unique(by_channel, "delivered") if channel_has(channel, "delivered") else None
        ),
        **rates_for(by_channel),
    }


def sending_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The channels that sent messages: the ones a comparison chart draws."""
    return [row for row in rows if row["channel"] != "subscription" and row["sent"]]


def failure_message_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The most frequent failure messages, with their kind and channel named."""
    return [
        {
            **row,
            "metric_label": row["metric"].replace("_", " ").capitalize(),
            "channel_label": channel_label(row["channel"]),
            "events_text": number(int(row["events"])),
        }
        for row in rows
    ]
