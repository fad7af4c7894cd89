"""Rates as Customer.io defines them, from per-metric unique-delivery totals.

delivery rate = delivered / sent; open, click, conversion, unsubscribe and spam rates are over
delivered; click-to-open = clicked / opened; bounce rate = bounced / sent. Channels that have no
"delivered" step (in-app, webhook, Slack) use sent in its place, and pages say so.
"""

from __future__ import annotations

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


def rates_for(totals_by_channel: dict[str, Totals]) -> dict[str, float | None]:
    """Every rate over the given channels (None where the denominator is zero).

    Subscription changes are not messages: an "Unsubscribed" from a preference centre is not
    an unsubscribe of a delivered message, so that channel takes no part in message rates."""
    totals_by_channel = {
        channel: totals
        for channel, totals in totals_by_channel.items()
        if channel != Channel.SUBSCRIPTION.value
    }
    merged: dict[str, int] = {}
    for totals in totals_by_channel.values():
        for metric, total in totals.items():
            merged[metric] = merged.get(metric, 0) + total.deliveries
    with_delivered = {c: t for c, t in totals_by_channel.items() if c not in NO_DELIVERED_STEP}
    denominators = {
        "sent": merged.get("sent", 0),
        "delivered": delivered_base(totals_by_channel),
        "opened": merged.get("opened", 0),
    }
    # A rate none of the channels can report (an SMS open rate) is "none", not 0 %.
    possible = {m for channel in totals_by_channel for m in CHANNEL_METRICS.get(channel, ())}
    out: dict[str, float | None] = {}
    for rate in RATES:
        if rate.numerator not in possible:
            out[rate.key] = None
            continue
        if rate.key == "delivery_rate":
            # Only channels that report delivery have a delivery rate.
            sent = sum(_unique(t, "sent") for t in with_delivered.values())
            delivered = sum(_unique(t, "delivered") for t in with_delivered.values())
            out[rate.key] = delivered / sent if sent else None
            continue
        denominator = denominators[rate.denominator]
        out[rate.key] = merged.get(rate.numerator, 0) / denominator if denominator else None
    return out


def human_rate(totals_by_channel: dict[str, Totals], metric: str) -> float | None:
    """Human opens or clicks (prefetched, proxied and machine ones left out) over delivered."""
    base = delivered_base(totals_by_channel)
    human = sum(t[metric].human_deliveries for t in totals_by_channel.values() if metric in t)
    return human / base if base else None
