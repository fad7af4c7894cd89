"""Sums over per-channel totals: unique deliveries, every event, and the rates a set of
channels can report at all."""

from __future__ import annotations

from collections.abc import Iterable

from dashboard.rates import CHANNEL_METRICS, RATES, Totals


def unique(totals_by_channel: dict[str, Totals], metric: str) -> int:
    """Deliveries that reached the metric (each once)."""
    return sum(t[metric].deliveries for t in totals_by_channel.values() if metric in t)


def raw(totals_by_channel: dict[str, Totals], metric: str) -> int:
    """Every event of the metric (opened five times is five)."""
    return sum(t[metric].events for t in totals_by_channel.values() if metric in t)


def event_count(totals: Totals) -> int:
    """Every event of one channel, whatever its metric."""
    return sum(total.events for total in totals.values())


def possible_rates(channels: Iterable[str]) -> set[str]:
    """The rates at least one of the channels can report (an SMS has no open rate)."""
    metrics = {metric for channel in channels for metric in CHANNEL_METRICS.get(channel, ())}
    return {rate.key for rate in RATES if rate.numerator in metrics}
