"""The one source of truth for channels, metrics and semantic event names.

Customer.io's "Journeys Message Metrics" source defines a fixed list of semantic track events
(``SEMANTIC``). Its reporting webhooks can also emit metrics that have no name in that list
(any ``undeliverable``, email ``deferred``, SMS ``replied``, everything WhatsApp, ...). Those
are never dropped: they get a name built the same way (``<Channel> <Metric>``) and are
flagged ``semantic=False`` so every reader can tell them apart from Customer.io's own list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    IN_APP = "in_app"
    WEBHOOK = "webhook"
    SLACK = "slack"
    SUBSCRIPTION = "subscription"
    # Outside Customer.io's semantic list: only reached through reporting webhooks.
    WHATSAPP = "whatsapp"


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.EMAIL: "Email",
    Channel.PUSH: "Push",
    Channel.SMS: "SMS",
    Channel.IN_APP: "In-App",
    Channel.WEBHOOK: "Webhook",
    Channel.SLACK: "Slack",
    Channel.SUBSCRIPTION: "Subscription",
    Channel.WHATSAPP: "WhatsApp",
}

# The seven channels of Customer.io's semantic list, in its order.
SEMANTIC_CHANNELS: tuple[Channel, ...] = (
    Channel.EMAIL,
    Channel.PUSH,
    Channel.SMS,
    Channel.IN_APP,
    Channel.WEBHOOK,
    Channel.SLACK,
    Channel.SUBSCRIPTION,
)


class Metric(StrEnum):
    DRAFTED = "drafted"
    ATTEMPTED = "attempted"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    SPAMMED = "spammed"
    FAILED = "failed"
    SUBSCRIBED = "subscribed"
    PREFERENCES_CHANGED = "preferences_changed"
    # Metrics that only reporting webhooks carry.
    UNDELIVERABLE = "undeliverable"
    DEFERRED = "deferred"
    REPLIED = "replied"


# How each metric reads in an event name ("Email Link Clicked", "Email Marked as Spam", ...).
_METRIC_WORDING: dict[Metric, str] = {
    Metric.DRAFTED: "Drafted",
    Metric.ATTEMPTED: "Attempted",
    Metric.SENT: "Sent",
    Metric.DELIVERED: "Delivered",
    Metric.OPENED: "Opened",
    Metric.CLICKED: "Link Clicked",
    Metric.CONVERTED: "Converted",
    Metric.UNSUBSCRIBED: "Unsubscribed",
    Metric.BOUNCED: "Bounced",
    Metric.SUPPRESSED: "Suppressed",
    Metric.SPAMMED: "Marked as Spam",
    Metric.FAILED: "Failed",
    Metric.UNDELIVERABLE: "Undeliverable",
    Metric.DEFERRED: "Deferred",
    Metric.REPLIED: "Replied",
}


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    channel: Channel
    metric: Metric
    # True when the name is in Customer.io's semantic event list.
    semantic: bool


def _message_event(channel: Channel, metric: Metric, *, semantic: bool) -> EventType:
    wording = _METRIC_WORDING[metric]
    if channel is Channel.IN_APP and metric is Metric.CLICKED:
        wording = "Clicked"  # Customer.io names it "In-App Clicked", not "In-App Link Clicked".
    return EventType(f"{CHANNEL_LABELS[channel]} {wording}", channel, metric, semantic)


_M = Metric
# Customer.io's semantic list, channel by channel, in its order.
_SEMANTIC_METRICS: dict[Channel, tuple[Metric, ...]] = {
    Channel.EMAIL: (
        _M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.DELIVERED, _M.OPENED, _M.CLICKED, _M.CONVERTED,
        _M.UNSUBSCRIBED, _M.BOUNCED, _M.SUPPRESSED, _M.SPAMMED, _M.FAILED,
    ),
    Channel.PUSH: (
        _M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.DELIVERED, _M.OPENED, _M.CLICKED, _M.CONVERTED,
        _M.BOUNCED, _M.SUPPRESSED, _M.FAILED,
    ),
    Channel.SMS: (
        _M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.DELIVERED, _M.CLICKED, _M.CONVERTED, _M.BOUNCED,
        _M.FAILED,
    ),
    Channel.IN_APP: (
        _M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.OPENED, _M.CLICKED, _M.CONVERTED, _M.FAILED,
    ),
    Channel.WEBHOOK: (_M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.CLICKED, _M.CONVERTED, _M.FAILED),
    Channel.SLACK: (_M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.CLICKED, _M.FAILED),
}  # fmt: skip

# Webhook metrics with no semantic name, by channel (named like the others, flagged).
_EXTENDED_METRICS: dict[Channel, tuple[Metric, ...]] = {
    Channel.EMAIL: (_M.UNDELIVERABLE, _M.DEFERRED),
    Channel.PUSH: (_M.UNDELIVERABLE,),
    Channel.SMS: (_M.UNDELIVERABLE, _M.REPLIED, _M.SUPPRESSED),
    Channel.IN_APP: (_M.UNDELIVERABLE,),
    Channel.WEBHOOK: (_M.UNDELIVERABLE,),
    Channel.SLACK: (_M.UNDELIVERABLE, _M.CONVERTED),
    Channel.WHATSAPP: (
        _M.DRAFTED, _M.ATTEMPTED, _M.SENT, _M.DELIVERED, _M.OPENED, _M.CLICKED, _M.CONVERTED,
        _M.BOUNCED, _M.SUPPRESSED, _M.FAILED, _M.UNDELIVERABLE, _M.REPLIED,
    ),
}  # fmt: skip

SUBSCRIBED = EventType("Subscribed", Channel.SUBSCRIPTION, Metric.SUBSCRIBED, True)
UNSUBSCRIBED = EventType("Unsubscribed", Channel.SUBSCRIPTION, Metric.UNSUBSCRIBED, True)
PREFERENCES_CHANGED = EventType(
    "Subscription Preferences Changed", Channel.SUBSCRIPTION, Metric.PREFERENCES_CHANGED, True
)


def _build_catalogue() -> tuple[EventType, ...]:
    events: list[EventType] = []
    for channel, metrics in _SEMANTIC_METRICS.items():
        events.extend(_message_event(channel, metric, semantic=True) for metric in metrics)
    events.extend([SUBSCRIBED, UNSUBSCRIBED, PREFERENCES_CHANGED])
    for channel, metrics in _EXTENDED_METRICS.items():
        events.extend(_message_event(channel, metric, semantic=False) for metric in metrics)
    return tuple(events)


EVENT_TYPES: tuple[EventType, ...] = _build_catalogue()
SEMANTIC_EVENT_TYPES: tuple[EventType, ...] = tuple(e for e in EVENT_TYPES if e.semantic)

_BY_NAME: dict[str, EventType] = {e.name: e for e in EVENT_TYPES}
_BY_FOLDED_NAME: dict[str, EventType] = {e.name.casefold(): e for e in EVENT_TYPES}
_BY_CHANNEL_METRIC: dict[tuple[Channel, Metric], EventType] = {
    (e.channel, e.metric): e for e in EVENT_TYPES if e.channel is not Channel.SUBSCRIPTION
}


def event_type_by_name(name: str) -> EventType | None:
    """The event type for an event name; matching ignores case ("email opened" works)."""
    return _BY_NAME.get(name) or _BY_FOLDED_NAME.get(name.strip().casefold())


# Reporting-webhook vocabulary: object_type -> channel, and webhook metric -> our metric.
WEBHOOK_OBJECT_TYPES: dict[str, Channel] = {
    "email": Channel.EMAIL,
    "push": Channel.PUSH,
    "sms": Channel.SMS,
    "in_app": Channel.IN_APP,
    "webhook": Channel.WEBHOOK,
    "slack": Channel.SLACK,
    "whatsapp": Channel.WHATSAPP,
}
WEBHOOK_METRICS: dict[str, Metric] = {
    "drafted": Metric.DRAFTED,
    "attempted": Metric.ATTEMPTED,
    "sent": Metric.SENT,
    "delivered": Metric.DELIVERED,
    "opened": Metric.OPENED,
    "clicked": Metric.CLICKED,
    "converted": Metric.CONVERTED,
    "unsubscribed": Metric.UNSUBSCRIBED,
    "bounced": Metric.BOUNCED,
    "dropped": Metric.SUPPRESSED,
    "spammed": Metric.SPAMMED,
    "failed": Metric.FAILED,
    "undeliverable": Metric.UNDELIVERABLE,
    "deferred": Metric.DEFERRED,
    "replied": Metric.REPLIED,
}
# Person-level metrics: the object_type names the channel that triggered the change (or
# "customer") and does not change the event.
WEBHOOK_PERSON_EVENTS: dict[str, EventType] = {
    "subscribed": SUBSCRIBED,
    "unsubscribed": UNSUBSCRIBED,
    "cio_subscription_preferences_changed": PREFERENCES_CHANGED,
}


def event_type_for_webhook(
    object_type: str, metric: str, *, has_delivery: bool
) -> EventType | None:
    """Map a reporting webhook's (object_type, metric) to an event type, or None if unknown.

    ``unsubscribed`` is both a message metric (email only, with a delivery) and a person-level
    change: the data decides which. Any other channel's unsubscribe (an SMS "STOP" reply, say)
    is the person-level change, even when it names the delivery that triggered it.
    """
    channel = WEBHOOK_OBJECT_TYPES.get(object_type)
    person_event = WEBHOOK_PERSON_EVENTS.get(metric)
    if person_event is not None:
        if channel is None and object_type != "customer":
            return None
        if not (metric == "unsubscribed" and channel is Channel.EMAIL and has_delivery):
            return person_event
    our_metric = WEBHOOK_METRICS.get(metric)
    if channel is None or our_metric is None:
        return None
    return _BY_CHANNEL_METRIC.get((channel, our_metric))


def webhook_pairs() -> list[tuple[str, str, EventType]]:
    """Every (object_type, metric) pair Customer.io's reporting webhooks list, with its event
    type. Person-level metrics are listed under ``customer``; they are accepted under any
    channel's object_type too, since that names the channel that triggered the change."""
    pairs: list[tuple[str, str, EventType]] = []
    for object_type, channel in WEBHOOK_OBJECT_TYPES.items():
        for webhook_metric, metric in WEBHOOK_METRICS.items():
            event_type = _BY_CHANNEL_METRIC.get((channel, metric))
            if event_type is not None:
                pairs.append((object_type, webhook_metric, event_type))
    for webhook_metric, event_type in WEBHOOK_PERSON_EVENTS.items():
        pairs.append(("customer", webhook_metric, event_type))
    return pairs
