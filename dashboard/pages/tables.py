"""Rows and cells that more than one page's tables show: a channel's row, rate cells, failure
messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.urls import reverse

from dashboard.failure_text import smtp_class
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


# How the SMTP class reads in the tables.
SMTP_CLASS_LABELS = {"hard": "Hard", "soft": "Soft"}
# The failure messages' CSV columns.
FAILURE_MESSAGE_COLUMNS = ["channel", "metric", "message", "smtp_class", "smtp_code", "events"]


def failure_message_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The most frequent failure messages, with their kind, channel and SMTP class named."""
    shown = []
    for row in rows:
        kind, code = smtp_class(row["message"] or "")
        shown.append(
            {
                **row,
                "metric_label": row["metric"].replace("_", " ").capitalize(),
                "channel_label": channel_label(row["channel"]),
                "events_text": number(int(row["events"])),
                "smtp_class": kind,
                "smtp_code": code,
                "smtp_label": f"{SMTP_CLASS_LABELS[kind]} · {code}" if kind else "",
            }
        )
    return shown


def failure_message_cells(row: dict[str, Any]) -> tuple[Any, ...]:
    """A failure message's CSV row; an SMTP class that does not apply is empty."""
    *texts, _events = FAILURE_MESSAGE_COLUMNS
    return (*(row[column] or None for column in texts), row["events"])
