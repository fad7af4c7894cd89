"""Rates as Customer.io defines them, from per-metric unique-delivery totals.

delivery rate = delivered / sent; open, click, conversion, unsubscribe and spam rates are over
delivered; click-to-open = clicked / opened; bounce rate = bounced / sent. Channels that have no
"delivered" step (in-app, webhook, Slack) use sent in its place, and pages say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from metrics_source.ingest.catalog import EVENT_TYPES, Channel

# Channels whose messages never report "delivered".
NO_DELIVERED_STEP = frozenset({Channel.IN_APP.value, Channel.WEBHOOK.value, Channel.SLACK.value})
# The metrics each channel can report at all (SMS has no opens, Slack no conversions...).
CHANNEL_METRICS: dict[str, frozenset[str]] = {
    channel.value: frozenset(e.metric.value for e in EVENT_TYPES if e.channel is channel)
    for channel in Channel
}


def channel_has(channel: str, metric: str) -> bool:
    return metric in CHANNEL_METRICS.get(channel, frozenset())


@dataclass(frozen=True, slots=True)
class MetricTotal:
    events: int = 0
    machine_events: int = 0
    deliveries: int = 0
    human_deliveries: int = 0


Totals = dict[str, MetricTotal]


@dataclass(frozen=True, slots=True)
class Rate:
    key: str
    label: str
    numerator: str
    # "delivered" means delivered, or sent for channels without a delivered step.
    denominator: str


RATES: tuple[Rate, ...] = (
    Rate("delivery_rate", "Delivery rate", "delivered", "sent"),
    Rate("open_rate", "Open rate", "opened", "delivered"),
    Rate("click_rate", "Click rate", "clicked", "delivered"),
    Rate("click_to_open", "Click-to-open", "clicked", "opened"),
    Rate("conversion_rate", "Conversion rate", "converted", "delivered"),
    Rate("bounce_rate", "Bounce rate", "bounced", "sent"),
    Rate("unsubscribe_rate", "Unsubscribe rate", "unsubscribed", "delivered"),
    Rate("spam_rate", "Spam rate", "spammed", "delivered"),
)
RATE_BY_KEY = {rate.key: rate for rate in RATES}
# Rates whose rise is bad news (shown red when they go up).
BAD_WHEN_UP = frozenset({"bounce_rate", "unsubscribe_rate", "spam_rate"})


def delivered_base(totals_by_channel: dict[str, Totals]) -> int:
    """Delivered messages, counting sent ones for channels without a delivered step."""
    return sum(
        _unique(totals, "sent" if channel in NO_DELIVERED_STEP else "delivered")
        for channel, totals in totals_by_channel.items()
    )


def _unique(totals: Totals, metric: str) -> int:
    total = totals.get(metric)
    return total.deliveries if total else 0


def _message_channels(totals_by_channel: dict[str, Totals]) -> dict[str, Totals]:
    """Subscription changes are not messages: an "Unsubscribed" from a preference centre is
    not an unsubscribe of a delivered message, so that channel takes no part in rates."""
    return {c: t for c, t in totals_by_channel.items() if c != Channel.SUBSCRIPTION.value}


def rate_channels(rate: Rate, channels: Iterable[str]) -> list[str]:
    """The channels a rate is counted over: those whose messages can reach its numerator (and
    its denominator, for click-to-open). An SMS cannot be opened, so an open rate over email
    and SMS would be diluted by messages that never could be: SMS stays out of its base."""
    needed = {rate.numerator} | ({rate.denominator} if rate.denominator == "opened" else set())
    return sorted(
        (
            channel
            for channel in channels
            if channel != Channel.SUBSCRIPTION.value
            and all(channel_has(channel, metric) for metric in needed)
        ),
        key=channel_order,
    )


def channel_order(channel: str) -> int:
    """Channels in the catalogue's order (email, push, SMS, ...), unknown ones last."""
    return _CHANNEL_ORDER.get(channel, len(_CHANNEL_ORDER))


_CHANNEL_ORDER = {channel.value: index for index, channel in enumerate(Channel)}


def rate_of(rate: Rate, totals_by_channel: dict[str, Totals]) -> float | None:
    """One rate over the channels that can report it (None where none can, or where the
    denominator is zero). Both periods of a comparison choose their channels by the same rule,
    so a rate and its change count the same kind of messages."""
    base = {c: totals_by_channel[c] for c in rate_channels(rate, totals_by_channel)}
    if not base:
        return None
    numerator = sum(_unique(totals, rate.numerator) for totals in base.values())
    if rate.denominator == "delivered":
        denominator = delivered_base(base)
    else:
        denominator = sum(_unique(totals, rate.denominator) for totals in base.values())
    return numerator / denominator if denominator else None


def rates_for(totals_by_channel: dict[str, Totals]) -> dict[str, float | None]:
    """Every rate over the given channels, each over the channels that can report it."""
    return {rate.key: rate_of(rate, totals_by_channel) for rate in RATES}


def human_rate(totals_by_channel: dict[str, Totals], metric: str) -> float | None:
    """Human opens or clicks (prefetched, proxied and machine ones left out) over delivered,
    over the channels where the metric exists."""
    base = {
        channel: totals
        for channel, totals in _message_channels(totals_by_channel).items()
        if channel_has(channel, metric)
    }
    denominator = delivered_base(base)
    human = sum(t[metric].human_deliveries for t in base.values() if metric in t)
    return human / denominator if denominator else None
