"""KPI tiles: a count or a rate, against the previous period."""

from __future__ import annotations

from collections.abc import Iterable

from dashboard.filters import channel_label
from dashboard.pages.formatting import count_change, number, percent, rate_change
from dashboard.pages.page import Tile
from dashboard.pages.totals import possible_rates, unique
from dashboard.rates import (
    BAD_WHEN_UP,
    RATE_BY_KEY,
    Totals,
    channel_has,
    channel_order,
    human_rate,
    rate_channels,
    rates_for,
)

# The rates a reader looks at first (spam stays in the tables).
TILE_RATES = (
    "delivery_rate",
    "open_rate",
    "click_rate",
    "click_to_open",
    "conversion_rate",
    "bounce_rate",
    "unsubscribe_rate",
)
# The rates with a human-only share under them: rate key -> (metric, what the line counts).
HUMAN_DETAILS = {"open_rate": ("opened", "opens"), "click_rate": ("clicked", "clicks")}


def count_tile(
    metric: str, current: dict[str, Totals], previous: dict[str, Totals], *, compared: bool = True
) -> Tile:
    """Unique deliveries that reached the metric; the change is left out when not compared.

    Delivered counts only the channels that report delivery, so beside a Sent over every
    channel its tile names them: "Sent -3 %, Delivered +4 %" is then no contradiction."""
    now = unique(current, metric)
    change, tone = count_change(now, unique(previous, metric)) if compared else ("", "")
    shown = _message_channels(current)
    reporting = sorted(
        (channel for channel in shown if channel_has(channel, metric)), key=channel_order
    )
    detail = _over(reporting) if len(reporting) < len(shown) else ""
    return Tile(metric.capitalize(), number(now), change, tone, detail)


def rate_tile(
    key: str,
    rates: dict[str, float | None],
    previous_rates: dict[str, float | None],
    *,
    detail: str = "",
    compared: bool = True,
) -> Tile:
    change, tone = (
        rate_change(rates[key], previous_rates[key], bad_when_up=key in BAD_WHEN_UP)
        if compared
        else ("", "")
    )
    return Tile(RATE_BY_KEY[key].label, percent(rates[key]), change, tone, detail)


def rate_detail(key: str, current: dict[str, Totals]) -> str:
    """What sits under a rate tile: the human share, and the channels the rate is counted over
    when it leaves some out (an open rate over email and push, not over SMS)."""
    return " · ".join(
        part for part in (human_detail(key, current), base_note(key, current)) if part
    )


def base_note(key: str, channels: Iterable[str]) -> str:
    """'over Email, Push' when the rate's base leaves out some of the channels shown."""
    shown = _message_channels(channels)
    base = rate_channels(RATE_BY_KEY[key], shown)
    return _over(base) if base and len(base) < len(shown) else ""


def _message_channels(channels: Iterable[str]) -> list[str]:
    return [channel for channel in channels if channel != "subscription"]


def _over(channels: Iterable[str]) -> str:
    return "over " + ", ".join(channel_label(channel) for channel in channels)


def human_detail(key: str, current: dict[str, Totals]) -> str:
    """'human opens 41.2%' under the open rate, 'human clicks ...' under the click rate."""
    if key not in HUMAN_DETAILS:
        return ""
    metric, what = HUMAN_DETAILS[key]
    return f"human {what} {percent(human_rate(current, metric))}"


def kpi_tiles(
    current: dict[str, Totals],
    previous: dict[str, Totals],
    channels: set[str],
    *,
    compared: bool = True,
) -> list[Tile]:
    """Sent, delivered and the rates the channels can report, each against the previous
    period unless not ``compared``, as on the overview (the channel and campaign pages)."""
    counts = ["sent"]
    if any(channel_has(channel, "delivered") for channel in channels):
        counts.append("delivered")
    rates, previous_rates = rates_for(current), rates_for(previous)
    possible = possible_rates(channels)
    return [count_tile(metric, current, previous, compared=compared) for metric in counts] + [
        rate_tile(key, rates, previous_rates, detail=rate_detail(key, current), compared=compared)
        for key in TILE_RATES
        if key in possible
    ]
