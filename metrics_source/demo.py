"""Demo data: a deterministic stream of realistic message-activity track calls.

``DemoStream`` plays a fictional workspace ("Northwind") over the last N days: campaigns,
broadcasts, newsletters and transactional messages on every channel, sent with a daily and
weekly rhythm (broadcasts and newsletters spike on their send day), each delivery walking a
plausible funnel with plausible delays, plus person-level subscription changes. The calls are
Segment-style track calls in Customer.io's semantic format, ready for
``metrics_source.ingest.events_ingest_calls``.

Reproducible: everything but the timestamps depends only on the seed and the sizes, and each
stored event's ``messageId`` is the k-th id of the seed's id sequence, so a second run with the
same seed stores nothing new whenever it runs. Timestamps follow the clock (the window ends
now) and never pass it. A stream is generated lazily, so memory stays flat for millions of calls.

On purpose, like real senders: a few percent of deliveries hand one event over thousands of
calls late (so it arrives after the events that followed it), and about one event in a hundred
is sent twice with the same ``messageId``.
"""

from __future__ import annotations

import base64
import heapq
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from metrics_source.ingest.catalog import (
    EVENT_TYPES,
    PREFERENCES_CHANGED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Channel,
    EventType,
    Metric,
)

DEFAULT_SEED = 20240601
DEFAULT_DAYS = 90
DEFAULT_EVENTS = 200_000

# Share of deliveries whose first event is handed over late, and of events sent twice.
OUT_OF_ORDER_SHARE = 0.03
DUPLICATE_SHARE = 0.01
# How many calls later a late event or a delayed repeat arrives: more than one ingest chunk
# (at most 2,500 calls, the batch limit), so it lands in a later transaction.
LATE_BY = (2_600, 9_000)

_EVENT = {(e.channel, e.metric): e for e in EVENT_TYPES if e.semantic}


def event_type(channel: Channel, metric: Metric) -> EventType:
    """The catalogue's semantic event type for a channel and metric (KeyError if none)."""
    return _EVENT[(channel, metric)]


# ------------------------------------------------------------------------------------------
# The workspace: people and messages
# ------------------------------------------------------------------------------------------

_FIRST = (
    "ada", "alan", "amir", "ana", "ben", "bia", "carl", "chen", "dana", "eli", "emma",
    "femi", "gia", "hana", "ian", "ines", "jon", "kai", "lea", "lin", "maya", "mia", "noah",
    "nora", "omar", "pia", "raj", "rosa", "sam", "sara", "tom", "uma", "vic", "wen", "yara",
    "yuki", "zoe", "luca", "ivan",
)  # fmt: skip
_LAST = (
    "adams", "baker", "costa", "diaz", "evans", "fischer", "garcia", "haddad", "ito",
    "jones", "khan", "lopez", "meyer", "nguyen", "okafor", "patel", "quinn", "rossi",
    "silva", "tanaka", "ueda", "vance", "wright", "xu", "young", "zimmer", "moreau",
    "novak", "larsen", "berg", "kowalski", "dubois", "santos", "murphy", "kim", "park",
    "lee",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example")
# Per-person engagement, mean 1: some people open everything, some nothing.
_ENGAGEMENT = (0.25, 0.55, 0.8, 0.95, 1.05, 1.2, 1.4, 1.8)


@dataclass(frozen=True, slots=True)
class Person:
    customer_id: str
    email: str
    phone: str
    device_id: str
    device_platform: str
    engagement: float


def person(index: int) -> Person:
    """The index-th person of the pool, computed, never stored (the pool can be large)."""
    scrambled = (index * 2654435761) & 0xFFFFFFFF
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST)) % len(_LAST)]
    return Person(
        customer_id=str(100_000 + index),
        email=f"{first}.{last}{index}@{_DOMAINS[scrambled % len(_DOMAINS)]}",
        phone=f"+1555{index:07d}",
        device_id=f"{scrambled:08x}-{index:06x}-4f1c-9a2e-{(scrambled >> 3):012x}"[:36],
        device_platform="ios" if scrambled % 5 < 2 else "android",
        engagement=_ENGAGEMENT[(scrambled >> 9) % len(_ENGAGEMENT)],
    )


def pool_size(events: int) -> int:
    """People in the workspace: enough that each gets a handful of messages."""
    return max(200, min(250_000, events // 20))


@dataclass(slots=True)
class Message:
    """One message a parent sends (a campaign action, a broadcast action, a newsletter
    variant, a transactional message), with its own funnel rates."""

    name: str
    kind: str  # campaign | broadcast | newsletter | transactional
    channel: Channel
    parent: dict[str, Any]  # the parent ids, as they appear in properties
    subject: str | None = None
    content: str = ""
    recipient: str | None = None  # webhook URL or Slack channel; people's for the others
    links: tuple[str, ...] = ()
    weight: float = 1.0  # share among the always-on messages, or of the burst
    send_at: float | None = None  # unix time of a broadcast's or newsletter's send
    open_rate: float = 0.0
    click_rate: float = 0.0
    convert_rate: float = 0.0
    bounce_rate: float = 0.0
    machine_open_share: float = 0.0
    link_ids: tuple[int, ...] = ()
    link_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        rates = random.Random(f"rates:{self.kind}:{self.name}")  # stable per message
        channel = self.channel
        if channel is Channel.EMAIL:
            self.open_rate = rates.uniform(0.22, 0.43)
            self.click_rate = rates.uniform(0.022, 0.048)
            self.bounce_rate = rates.uniform(0.01, 0.028)
            self.machine_open_share = rates.uniform(0.16, 0.29)
        elif channel is Channel.PUSH:
            self.open_rate = rates.uniform(0.05, 0.12)
            self.click_rate = rates.uniform(0.02, 0.05)
            self.bounce_rate = rates.uniform(0.01, 0.03)
        elif channel is Channel.SMS:
            self.click_rate = rates.uniform(0.03, 0.09)
            self.bounce_rate = rates.uniform(0.01, 0.03)
        elif channel is Channel.IN_APP:
            self.open_rate = rates.uniform(0.3, 0.6)
            self.click_rate = rates.uniform(0.05, 0.14)
        else:  # webhook, slack
            self.click_rate = rates.uniform(0.01, 0.05)
        self.convert_rate = rates.uniform(0.15, 0.4)
        base = 1_000 + sum(map(ord, self.name)) * 7 + int(self.parent.get("action_id", 0)) % 97
        self.link_ids = tuple(base * 10 + i for i in range(len(self.links)))
        # Skewed popularity: the first link (the main call to action) takes most clicks.
        self.link_weights = tuple(accumulate(1 / (i + 1) ** 1.6 for i in range(len(self.links))))


def _links(slug: str, *paths: str) -> tuple[str, ...]:
    return tuple(
        f"https://northwind.example/{path}?utm_source=customerio&utm_campaign={slug}"
        for path in paths
    )


_JOURNEYS = {
    101: "01HV7J4T1W6X8Q2M3N5P7R9S0A",
    102: "01HV7J6B3C5D7E9F1G3H5J7K9M",
    103: "01HV7J8N2P4Q6R8S0T2V4W6X8Y",
    104: "01HV7JA1B3C5D7E9F1G3H5J7K9",
    105: "01HV7JC4D6E8F0G2H4J6K8M0N2",
    106: "01HV7JE5F7G9H1J3K5M7N9P1Q3",
}


def _campaign(campaign_id: int, weight: float, actions: list[dict[str, Any]]) -> list[Message]:
    share = weight / len(actions)
    return [
        Message(
            kind="campaign",
            parent={
                "campaign_id": campaign_id,
                "action_id": action.pop("action_id"),
                "journey_id": _JOURNEYS[campaign_id],
            },
            weight=action.pop("weight", share),
            **action,
        )
        for action in actions
    ]


def always_on_messages() -> list[Message]:
    """Campaigns and transactional messages: they send every day, following the rhythm."""
    ch = Channel
    messages = [
        *_campaign(
            101,
            0.17,
            [
                dict(
                    name="Welcome: welcome email",
                    action_id=1011,
                    channel=ch.EMAIL,
                    subject="Welcome to Northwind!",
                    links=_links("welcome", "start", "docs/quickstart", "pricing", "blog"),
                ),
                dict(
                    name="Welcome: getting started tips",
                    action_id=1012,
                    channel=ch.EMAIL,
                    subject="3 tips to get the most out of Northwind",
                    links=_links("welcome", "docs/tips", "templates", "community"),
                ),
                dict(
                    name="Welcome: finish setup push",
                    action_id=1013,
                    channel=ch.PUSH,
                    content="Finish setting up your account",
                    links=_links("welcome", "app/setup"),
                ),
            ],
        ),
        *_campaign(
            102,
            0.11,
            [
                dict(
                    name="Onboarding: product tour",
                    action_id=1021,
                    channel=ch.IN_APP,
                    content="Take the 2-minute product tour",
                    links=_links("onboarding", "app/tour", "app/settings"),
                ),
                dict(
                    name="Onboarding: complete your profile",
                    action_id=1022,
                    channel=ch.EMAIL,
                    subject="You're almost there: complete your profile",
                    links=_links("onboarding", "app/profile", "help/profile", "privacy"),
                ),
                dict(
                    name="Onboarding: SMS reminder",
                    action_id=1023,
                    channel=ch.SMS,
                    content="Northwind: your workspace is ready. Finish setup: nwd.example/s",
                    links=_links("onboarding", "app/setup"),
                ),
            ],
        ),
        *_campaign(
            103,
            0.14,
            [
                dict(
                    name="Abandoned cart: reminder email",
                    action_id=1031,
                    channel=ch.EMAIL,
                    subject="You left something in your cart",
                    links=_links("cart", "cart", "shop/bestsellers", "help/shipping", "returns"),
                ),
                dict(
                    name="Abandoned cart: SMS nudge",
                    action_id=1032,
                    channel=ch.SMS,
                    content="Your cart is waiting - complete your order: nwd.example/c",
                    links=_links("cart", "cart"),
                ),
                dict(
                    name="Abandoned cart: push nudge",
                    action_id=1033,
                    channel=ch.PUSH,
                    content="Still thinking it over? Your cart is saved",
                    links=_links("cart", "cart"),
                ),
            ],
        ),
        *_campaign(
            104,
            0.07,
            [
                dict(
                    name="Win-back: 20% off",
                    action_id=1041,
                    channel=ch.EMAIL,
                    subject="We miss you - here's 20% off",
                    links=_links("winback", "shop?code=COMEBACK20", "shop/new", "preferences"),
                ),
                dict(
                    name="Win-back: push offer",
                    action_id=1042,
                    channel=ch.PUSH,
                    content="20% off everything, this week only",
                    links=_links("winback", "shop"),
                ),
            ],
        ),
        *_campaign(
            105,
            0.06,
            [
                dict(
                    name="Usage alerts: team Slack",
                    action_id=1051,
                    channel=ch.SLACK,
                    content="Usage alert: workspace reached 80% of its plan",
                    recipient="#customer-alerts",
                    links=_links("usage", "app/billing", "app/usage"),
                ),
                dict(
                    name="Usage alerts: CRM sync webhook",
                    action_id=1052,
                    channel=ch.WEBHOOK,
                    content="POST usage snapshot to CRM",
                    recipient="https://crm.example.com/hooks/northwind/usage",
                    links=_links("usage", "app/usage"),
                ),
            ],
        ),
        *_campaign(
            106,
            0.09,
            [
                dict(
                    name="Trial ending: email",
                    action_id=1061,
                    channel=ch.EMAIL,
                    subject="Your trial ends in 3 days",
                    links=_links("trial", "app/billing", "pricing", "contact-sales"),
                ),
                dict(
                    name="Trial ending: in-app banner",
                    action_id=1062,
                    channel=ch.IN_APP,
                    content="Your trial ends soon - pick a plan",
                    links=_links("trial", "pricing"),
                ),
                dict(
                    name="Trial ending: sales Slack",
                    action_id=1063,
                    channel=ch.SLACK,
                    content="Trial ending for an active account",
                    recipient="#sales-pipeline",
                    links=_links("trial", "crm/account"),
                ),
            ],
        ),
    ]
    transactional: list[dict[str, Any]] = [
        dict(
            transactional_message_id=41,
            name="Password reset",
            channel=ch.EMAIL,
            subject="Password reset request",
            weight=0.11,
            links=_links("tx", "reset"),
        ),
        dict(
            transactional_message_id=42,
            name="Order confirmation",
            channel=ch.EMAIL,
            subject="Your Northwind order is confirmed",
            weight=0.12,
            links=_links("tx", "orders", "help/orders"),
        ),
        dict(
            transactional_message_id=43,
            name="Order shipped",
            channel=ch.PUSH,
            content="Your order has shipped",
            weight=0.07,
            links=_links("tx", "orders/track"),
        ),
        dict(
            transactional_message_id=44,
            name="Sign-in code",
            channel=ch.SMS,
            content="Your Northwind sign-in code is 482913",
            weight=0.06,
        ),
    ]
    for spec in transactional:
        parent = {"transactional_message_id": spec.pop("transactional_message_id")}
        messages.append(Message(kind="transactional", parent=parent, **spec))
    return messages


_BROADCASTS: tuple[tuple[int, float, list[dict[str, Any]]], ...] = (
    # (broadcast id, where in the window it goes out, its actions)
    (201, 0.18, [
        dict(action_id=2011, channel=Channel.EMAIL, name="Spring sale: announcement",
             subject="Spring sale: 30% off everything",
             links=_links("spring-sale", "sale", "sale/new", "sale/bestsellers", "stores")),
        dict(action_id=2012, channel=Channel.PUSH, name="Spring sale: push",
             content="Spring sale is live: 30% off", links=_links("spring-sale", "sale")),
    ]),
    (202, 0.43, [
        dict(action_id=2021, channel=Channel.EMAIL, name="New feature: dashboards email",
             subject="New: dashboards for your whole team",
             links=_links("dashboards", "features/dashboards", "docs/dashboards", "webinar")),
        dict(action_id=2022, channel=Channel.IN_APP, name="New feature: dashboards in-app",
             content="Try the new dashboards", links=_links("dashboards", "app/dashboards")),
    ]),
    (203, 0.66, [
        dict(action_id=2031, channel=Channel.EMAIL, name="Maintenance notice: email",
             subject="Scheduled maintenance on Sunday, 02:00-04:00 UTC",
             links=_links("maintenance", "status")),
        dict(action_id=2032, channel=Channel.SMS, name="Maintenance notice: SMS",
             content="Northwind maintenance Sunday 02:00-04:00 UTC. Status: nwd.example/st",
             links=_links("maintenance", "status")),
    ]),
    (204, 0.88, [
        dict(action_id=2041, channel=Channel.EMAIL, name="Early access: email",
             subject="You're invited: early access to Northwind Pro",
             links=_links("early-access", "pro", "pro/pricing", "pro/faq")),
        dict(action_id=2042, channel=Channel.SMS, name="Early access: SMS",
             content="Early access to Northwind Pro is open: nwd.example/pro",
             links=_links("early-access", "pro")),
        dict(action_id=2043, channel=Channel.PUSH, name="Early access: push",
             content="Northwind Pro early access is open", links=_links("early-access", "pro")),
    ]),
)  # fmt: skip


def _weekday_at(moment: datetime, hour: int) -> datetime:
    """The moment's day at the given UTC hour, moved to Monday when it falls on a weekend."""
    day = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def burst_messages(start: datetime, end: datetime) -> list[Message]:
    """Broadcasts (at fixed points of the window) and the weekly newsletter (Tuesdays at
    14:00 UTC, in two subject-line variants), each sent in one go."""
    messages: list[Message] = []
    span = end - start
    for broadcast_id, where, actions in _BROADCASTS:
        send_at = _weekday_at(start + span * where, 10 if broadcast_id % 2 else 15)
        send_at = min(max(send_at, start), end - timedelta(minutes=30))
        for action in actions:
            spec: dict[str, Any] = dict(action)
            parent = {"broadcast_id": broadcast_id, "action_id": spec.pop("action_id")}
            messages.append(
                Message(kind="broadcast", parent=parent, send_at=send_at.timestamp(), **spec)
            )
    tuesdays = []
    day = start.replace(hour=14, minute=0, second=0, microsecond=0)
    while day < end:
        if day.weekday() == 1 and start <= day:
            tuesdays.append(day)
        day += timedelta(days=1)
    if not tuesdays:  # a window shorter than a week still gets one issue
        tuesdays = [start + span / 2]
    for send_day in tuesdays:
        iso_year, iso_week, _ = send_day.isocalendar()
        issue = f"week {iso_week}, {iso_year}"
        variants = (
            (1, f"The Northwind Weekly - {issue}"),
            (2, f"This week at Northwind: what's new ({issue})"),
        )
        for content_id, subject in variants:
            parent = {"newsletter_id": iso_year * 100 + iso_week, "content_id": content_id}
            messages.append(
                Message(
                    kind="newsletter",
                    channel=Channel.EMAIL,
                    name=f"Weekly newsletter {issue} ({'AB'[content_id - 1]})",
                    subject=subject,
                    parent=parent,
                    send_at=send_day.timestamp(),
                    weight=1 / len(tuesdays) / 2,
                    links=_links(
                        f"weekly-{iso_year}-{iso_week}", "blog/latest", "changelog", "events"
                    ),
                )
            )
    return messages


# ------------------------------------------------------------------------------------------
# Rhythm
# ------------------------------------------------------------------------------------------

# Sends by hour of day (UTC) and day of week (Monday first).
HOURLY = (
    0.12, 0.08, 0.06, 0.05, 0.06, 0.1, 0.22, 0.45, 0.75, 0.95, 1.0, 1.0,
    0.95, 0.98, 1.0, 0.97, 0.9, 0.8, 0.65, 0.55, 0.45, 0.35, 0.25, 0.17,
)  # fmt: skip
WEEKLY = (1.0, 1.05, 1.05, 1.0, 0.92, 0.45, 0.38)
# Shares of all deliveries: always-on messages, broadcasts, newsletters; and person-level
# subscription changes beside them (per delivery).
ALWAYS_ON_SHARE, BROADCAST_SHARE, NEWSLETTER_SHARE = 0.68, 0.12, 0.20
SUBSCRIPTION_SHARE = 0.012
# A burst sends over a few hours, most in the first.
BURST_HOURS = (0.55, 0.28, 0.12, 0.05)


def _rhythm(hour_start: float) -> float:
    moment = datetime.fromtimestamp(hour_start, UTC)
    return HOURLY[moment.hour] * WEEKLY[moment.weekday()]


@dataclass(slots=True)
class _Hour:
    start: float  # the first moment a delivery can be created in this hour
    end: float
    messages: list[Message]
    cum_weights: list[float]


# ------------------------------------------------------------------------------------------
# Failure messages
# ------------------------------------------------------------------------------------------

EMAIL_BOUNCES = (
    "550 5.1.1 The email account that you tried to reach does not exist",
    "550 5.1.1 <{email}>: Recipient address rejected: User unknown",
    "552 5.2.2 Mailbox full",
    "554 5.7.1 Message rejected: spam content",
    "550 5.7.26 Unauthenticated email from this domain is not accepted",
    "551 5.1.6 Recipient has moved; no forwarding address",
)
EMAIL_BOUNCE_WEIGHTS = tuple(accumulate((0.48, 0.12, 0.17, 0.1, 0.08, 0.05)))
EMAIL_SUPPRESSIONS = (
    "Address is on the suppression list after a previous hard bounce",
    "Recipient marked a previous message as spam",
    "Recipient unsubscribed from this topic",
)
EMAIL_ATTEMPTS = (
    "421 4.7.0 Try again later, closing connection",
    "451 4.3.0 Mail server temporarily rejected message",
    "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
)
EMAIL_FAILURES = (
    "Liquid error: undefined variable 'order.number' in template",
    "Sending domain northwind.example is not verified",
    "Recipient address is not a valid email address",
)
PUSH_BOUNCES = (
    "Unregistered device token",
    "BadDeviceToken",
    "The registration token is not a valid FCM registration token",
    "DeviceTokenNotForTopic",
)
PUSH_SUPPRESSIONS = ("Device has opted out of notifications", "App uninstalled")
PUSH_FAILURES = ("APNs certificate expired", "FCM server key is invalid")
SMS_BOUNCES = (
    "Carrier rejected: invalid number",
    "Unreachable destination handset",
    "Message filtered by carrier: suspected spam",
    "Landline or unreachable carrier",
)
SMS_FAILURES = (
    "Twilio error 21610: Attempt to send to unsubscribed recipient",
    "Twilio error 21211: Invalid 'To' phone number",
)
IN_APP_FAILURES = ("Message expired before it was displayed", "Liquid error in message body")
WEBHOOK_FAILURES = (
    "HTTP 500 Internal Server Error",
    "HTTP 404 Not Found",
    "Request timed out after 4 seconds",
    "Connection refused",
)
SLACK_FAILURES = ("channel_not_found", "not_in_channel", "invalid_auth", "rate_limited")


# ------------------------------------------------------------------------------------------
# The stream
# ------------------------------------------------------------------------------------------

# One planned event: seconds after the delivery was created, its type, extra properties.
Planned = tuple[float, EventType, dict[str, Any] | None]

_HOUR_PREFIXES: dict[int, str] = {}


def _iso(ts: float) -> str:
    """ISO 8601 with milliseconds and a Z, like Customer.io's; about 4x faster than datetime."""
    seconds = int(ts)
    hour = seconds // 3600
    prefix = _HOUR_PREFIXES.get(hour)
    if prefix is None:
        prefix = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:")
        _HOUR_PREFIXES[hour] = prefix
    rest = seconds - hour * 3600
    return f"{prefix}{rest // 60:02d}:{rest % 60:02d}.{int((ts - seconds) * 1000):03d}Z"


@dataclass(slots=True)
class DemoStats:
    """What the stream has produced so far (read it after iterating)."""

    calls: int = 0  # calls yielded, repeats included
    events: int = 0  # distinct events (messageIds)
    deliveries: int = 0
    subscription_changes: int = 0
    late: int = 0  # events handed over later than events that followed them
    repeats: int = 0  # second copies of an event (same messageId)
    by_event: dict[str, int] = field(default_factory=dict)


class DemoStream:
    """Iterate to get the calls; ``stats`` counts them as they go."""

    def __init__(
        self,
        *,
        events: int = DEFAULT_EVENTS,
        days: int = DEFAULT_DAYS,
        seed: int = DEFAULT_SEED,
        now: datetime | None = None,
    ) -> None:
        if events < 0 or days < 1:
            raise ValueError("events must be >= 0 and days >= 1")
        self.events = events
        self.days = days
        self.seed = seed
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.start = self.now - timedelta(days=days)
        self.stats = DemoStats()
        self._now_ts = self.now.timestamp()
        self._people = pool_size(events)
        self.messages = always_on_messages() + burst_messages(self.start, self.now)
        self._hours = self._plan_hours()

    # -- the calendar --------------------------------------------------------------------

    def _plan_hours(self) -> list[_Hour]:
        first = int(self.start.timestamp()) // 3600 * 3600
        start_ts, now_ts = self.start.timestamp(), self._now_ts
        hour_starts = list(range(first, int(now_ts) + 1, 3600))
        rhythm = [
            _rhythm(h) * (min(h + 3600, now_ts) - max(h, start_ts)) / 3600 for h in hour_starts
        ]
        always_on = [m for m in self.messages if m.send_at is None]
        always_weight = sum(m.weight for m in always_on)
        total_rhythm = sum(rhythm) or 1.0
        # Bursts get their share of all deliveries whatever the window's length.
        per_burst_unit = total_rhythm / ALWAYS_ON_SHARE
        bursts: dict[int, list[tuple[Message, float]]] = {}
        for message in self.messages:
            if message.send_at is None:
                continue
            share = BROADCAST_SHARE if message.kind == "broadcast" else NEWSLETTER_SHARE
            if message.kind == "broadcast":
                in_broadcast = [m for m in self.messages if m.parent == message.parent]
                n_broadcasts = len(_BROADCASTS)
                weight = share / n_broadcasts / len(in_broadcast)
            else:
                weight = share * message.weight
            send_hour = int(message.send_at) // 3600 * 3600
            for offset, part in enumerate(BURST_HOURS):
                hour = send_hour + offset * 3600
                bursts.setdefault(hour, []).append((message, weight * part * per_burst_unit))
        hours = []
        for hour_start, hour_rhythm in zip(hour_starts, rhythm, strict=True):
            lo, hi = max(hour_start, start_ts), min(hour_start + 3600, now_ts)
            if hi <= lo:
                continue
            pairs = [(m, hour_rhythm * m.weight / always_weight) for m in always_on]
            pairs += bursts.get(hour_start, [])
            hours.append(
                _Hour(
                    start=lo,
                    end=hi,
                    messages=[m for m, _ in pairs],
                    cum_weights=list(accumulate(w for _, w in pairs)),
                )
            )
        return hours

    # -- one delivery's funnel -------------------------------------------------------------

    def _plan(self, rng: random.Random, message: Message, who: Person) -> list[Planned]:
        channel = message.channel
        if channel is Channel.EMAIL:
            return self._plan_email(rng, message, who)
        if channel is Channel.PUSH:
            return self._plan_push(rng, message, who)
        if channel is Channel.SMS:
            return self._plan_sms(rng, message)
        return self._plan_other(rng, message)

    @staticmethod
    def _open_delay(rng: random.Random) -> float:
        # Minutes to hours, a long tail into the next days.
        return min(rng.lognormvariate(8.3, 1.3), 5 * 86400)

    @staticmethod
    def _convert_delay(rng: random.Random) -> float:
        return min(rng.lognormvariate(9.8, 1.1), 6 * 86400)

    def _click(
        self, rng: random.Random, message: Message, at: float, ch: Channel, machine: bool = False
    ) -> Planned:
        link = rng.choices(range(len(message.links)), cum_weights=message.link_weights)[0]
        extra: dict[str, Any] = {"href": message.links[link], "link_id": message.link_ids[link]}
        if ch is Channel.EMAIL:
            extra["machine"] = machine
        return (at, event_type(ch, Metric.CLICKED), extra)

    def _plan_email(self, rng: random.Random, message: Message, who: Person) -> list[Planned]:
        ch = Channel.EMAIL
        roll = rng.random()
        if roll < 0.006:
            failure = rng.choice(EMAIL_SUPPRESSIONS)
            return [(0.0, event_type(ch, Metric.SUPPRESSED), {"failure_message": failure})]
        if roll < 0.009:
            return [
                (0.0, event_type(ch, Metric.ATTEMPTED),
                 {"failure_message": rng.choice(EMAIL_ATTEMPTS)}),
                (rng.uniform(300, 3600), event_type(ch, Metric.FAILED),
                 {"failure_message": rng.choice(EMAIL_FAILURES)}),
            ]  # fmt: skip
        plan: list[Planned] = []
        t = rng.uniform(0.2, 3.0)
        if roll < 0.017:  # a soft failure, then sent on retry
            plan.append((0.0, event_type(ch, Metric.ATTEMPTED),
                         {"failure_message": rng.choice(EMAIL_ATTEMPTS)}))  # fmt: skip
            t += rng.uniform(300, 1800)
        plan.append((t, event_type(ch, Metric.SENT), None))
        roll = rng.random()
        if roll < message.bounce_rate:
            failure = rng.choices(EMAIL_BOUNCES, cum_weights=EMAIL_BOUNCE_WEIGHTS)[0]
            failure = failure.replace("{email}", who.email)
            plan.append(
                (
                    t + rng.uniform(2, 120),
                    event_type(ch, Metric.BOUNCED),
                    {"failure_message": failure},
                )
            )
            return plan
        if roll >= 0.99:  # still on its way (deferred by the receiving server)
            return plan
        t += rng.lognormvariate(1.5, 0.9)
        plan.append((t, event_type(ch, Metric.DELIVERED), None))
        delivered = t
        opened_at = None
        if rng.random() < message.open_rate * who.engagement:
            if rng.random() < message.machine_open_share:  # a mail privacy proxy fetches it
                flag = rng.random() < 0.7
                opened_at = t + rng.uniform(2, 300)
                plan.append((opened_at, event_type(ch, Metric.OPENED),
                             {"prefetched": not flag, "proxied": flag}))  # fmt: skip
                if rng.random() < 0.35:
                    plan.append((opened_at + self._open_delay(rng), event_type(ch, Metric.OPENED),
                                 {"prefetched": False, "proxied": False}))  # fmt: skip
            else:
                opened_at = t + self._open_delay(rng)
                plan.append((opened_at, event_type(ch, Metric.OPENED),
                             {"prefetched": False, "proxied": False}))  # fmt: skip
                if rng.random() < 0.3:  # opened again later
                    plan.append((opened_at + self._open_delay(rng), event_type(ch, Metric.OPENED),
                                 {"prefetched": False, "proxied": False}))  # fmt: skip
        if rng.random() < 0.08 * message.click_rate and message.links:
            # A link scanner follows a link seconds after delivery.
            plan.append(self._click(rng, message, delivered + rng.uniform(1, 30), ch, machine=True))
        if opened_at is not None:
            if message.links and rng.random() < 0.92 * message.click_rate / message.open_rate:
                clicked_at = opened_at + rng.uniform(5, 1800)
                plan.append(self._click(rng, message, clicked_at, ch))
                if rng.random() < 0.25:
                    plan.append(self._click(rng, message, clicked_at + rng.uniform(10, 900), ch))
                if rng.random() < message.convert_rate:
                    plan.append((clicked_at + self._convert_delay(rng),
                                 event_type(ch, Metric.CONVERTED), None))  # fmt: skip
            elif rng.random() < 0.01:
                plan.append((opened_at + self._convert_delay(rng),
                             event_type(ch, Metric.CONVERTED), None))  # fmt: skip
            if rng.random() < 0.009:
                unsub_at = opened_at + rng.uniform(10, 600)
                plan.append((unsub_at, event_type(ch, Metric.UNSUBSCRIBED), None))
                if rng.random() < 0.6:  # the person leaves every topic, not just this one
                    plan.append(
                        (unsub_at + rng.uniform(0.5, 5), UNSUBSCRIBED, {"object_type": "email"})
                    )
        if rng.random() < 0.0008:
            plan.append((delivered + rng.uniform(600, 86400), event_type(ch, Metric.SPAMMED), None))
        plan.sort(key=_first)
        return plan

    def _plan_push(self, rng: random.Random, message: Message, who: Person) -> list[Planned]:
        ch = Channel.PUSH
        roll = rng.random()
        if roll < 0.005:
            failure = rng.choice(PUSH_SUPPRESSIONS)
            return [(0.0, event_type(ch, Metric.SUPPRESSED), {"failure_message": failure})]
        if roll < 0.008:
            return [
                (0.0, event_type(ch, Metric.FAILED), {"failure_message": rng.choice(PUSH_FAILURES)})
            ]
        t = rng.uniform(0.2, 2.0)
        plan: list[Planned] = [(t, event_type(ch, Metric.SENT), None)]
        roll = rng.random()
        if roll < message.bounce_rate:
            plan.append((t + rng.uniform(0.5, 10), event_type(ch, Metric.BOUNCED),
                         {"failure_message": rng.choice(PUSH_BOUNCES)}))  # fmt: skip
            return plan
        if roll >= 0.95:
            return plan
        t += rng.uniform(0.3, 6)
        plan.append((t, event_type(ch, Metric.DELIVERED), None))
        if rng.random() < message.open_rate * who.engagement:
            opened_at = t + min(rng.lognormvariate(6.5, 1.6), 2 * 86400)
            plan.append((opened_at, event_type(ch, Metric.OPENED), None))
            if message.links and rng.random() < message.click_rate / message.open_rate:
                clicked_at = opened_at + rng.uniform(1, 20)
                plan.append(self._click(rng, message, clicked_at, ch))
                if rng.random() < message.convert_rate:
                    plan.append((clicked_at + self._convert_delay(rng),
                                 event_type(ch, Metric.CONVERTED), None))  # fmt: skip
        return plan

    def _plan_sms(self, rng: random.Random, message: Message) -> list[Planned]:
        ch = Channel.SMS
        if rng.random() < 0.004:
            return [
                (0.0, event_type(ch, Metric.FAILED), {"failure_message": rng.choice(SMS_FAILURES)})
            ]
        t = rng.uniform(0.2, 2.0)
        plan: list[Planned] = [(t, event_type(ch, Metric.SENT), {"content": message.content})]
        roll = rng.random()
        if roll < message.bounce_rate:
            plan.append((t + rng.uniform(5, 300), event_type(ch, Metric.BOUNCED),
                         {"failure_message": rng.choice(SMS_BOUNCES)}))  # fmt: skip
            return plan
        if roll >= 0.96:
            return plan
        t += rng.lognormvariate(2.5, 0.8)
        plan.append((t, event_type(ch, Metric.DELIVERED), None))
        if message.links and rng.random() < message.click_rate:
            clicked_at = t + min(rng.lognormvariate(6.0, 1.5), 86400)
            plan.append(self._click(rng, message, clicked_at, ch))
            if rng.random() < message.convert_rate:
                plan.append((clicked_at + self._convert_delay(rng),
                             event_type(ch, Metric.CONVERTED), None))  # fmt: skip
        if rng.random() < 0.003:  # a "STOP" reply
            plan.append((t + rng.uniform(30, 7200), UNSUBSCRIBED, {"object_type": "sms"}))
            plan.sort(key=_first)
        return plan

    def _plan_other(self, rng: random.Random, message: Message) -> list[Planned]:
        """In-app, webhook and Slack: sent, then opened / clicked; nothing is 'delivered'."""
        ch = message.channel
        failures = {
            Channel.IN_APP: (0.005, IN_APP_FAILURES),
            Channel.WEBHOOK: (0.015, WEBHOOK_FAILURES),
            Channel.SLACK: (0.01, SLACK_FAILURES),
        }[ch]
        if rng.random() < failures[0]:
            return [
                (0.0, event_type(ch, Metric.FAILED), {"failure_message": rng.choice(failures[1])})
            ]
        t = rng.uniform(0.2, 2.0)
        plan: list[Planned] = [(t, event_type(ch, Metric.SENT), None)]
        if ch is Channel.IN_APP:
            if rng.random() >= message.open_rate:
                return plan
            # Shown when the person next opens the app.
            t += min(rng.lognormvariate(8.0, 1.6), 3 * 86400)
            plan.append((t, event_type(ch, Metric.OPENED), None))
            if not message.links or rng.random() >= message.click_rate / message.open_rate:
                return plan
        elif not message.links or rng.random() >= message.click_rate:
            return plan
        t += rng.uniform(3, 3600)
        click = self._click(rng, message, t, ch)
        if ch is Channel.IN_APP:
            assert click[2] is not None
            click[2]["tracked_response"] = (
                "cta_primary" if click[2]["link_id"] % 10 == 0 else "cta_secondary"
            )
        plan.append(click)
        if ch is not Channel.SLACK and rng.random() < message.convert_rate:
            plan.append((t + self._convert_delay(rng), event_type(ch, Metric.CONVERTED), None))
        return plan

    def _plan_subscription(self, rng: random.Random) -> list[Planned]:
        roll = rng.random()
        if roll < 0.55:
            return [(0.0, SUBSCRIBED, {"object_type": "customer"})]
        if roll < 0.85:
            topic = rng.randint(1, 8)
            content = (
                f'{{"topics":{{"topic_{topic}":{"true" if rng.random() < 0.4 else "false"}}}}}'
            )
            return [(0.0, PREFERENCES_CHANGED, {"object_type": "customer", "content": content})]
        return [(0.0, UNSUBSCRIBED, {"object_type": "customer"})]

    # -- the calls ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"demo:{self.seed}")
        message_ids = random.Random(f"demo-message-ids:{self.seed}")
        delivery_ids = random.Random(f"demo-delivery-ids:{self.seed}")
        stats = self.stats
        if self.events == 0 or not self._hours:
            return
        # Deliveries to spread over the hours, from a pilot's events per delivery; a little
        # short on purpose, so the last hours are never starved: a top-up pass spread over
        # the whole window fills the rest.
        target = 0.96 * self.events / self._events_per_delivery()
        hour_weights = [h.cum_weights[-1] for h in self._hours]
        cum_hours = list(accumulate(hour_weights))
        total_weight = cum_hours[-1]
        late: list[tuple[int, int, dict[str, Any]]] = []  # (due at call number, order, call)
        order = 0

        def emit(call: dict[str, Any]) -> Iterator[dict[str, Any]]:
            nonlocal order
            stats.calls += 1
            yield call
            while late and late[0][0] <= stats.calls:
                stats.calls += 1
                yield heapq.heappop(late)[2]
            order += 1

        def deliveries() -> Iterator[tuple[_Hour, float]]:
            planned = 0.0
            for hour, cum in zip(self._hours, cum_hours, strict=True):
                planned_here = target * cum / total_weight
                while planned < planned_here:
                    planned += 1
                    yield hour, rng.uniform(hour.start, hour.end)
            while True:  # top up
                hour = self._hours[bisect_right(cum_hours, rng.random() * total_weight) - 1]
                yield hour, rng.uniform(hour.start, hour.end)

        now_ts = self._now_ts
        for hour, created in deliveries():
            if rng.random() < SUBSCRIPTION_SHARE:
                plan = self._plan_subscription(rng)
                who = person(rng.randrange(self._people))
                stats.subscription_changes += 1
                base: dict[str, Any] | None = None
                message = None
            else:
                weights = hour.cum_weights
                message = hour.messages[bisect_right(weights, rng.random() * weights[-1])]
                who = person(rng.randrange(self._people))
                plan = self._plan(rng, message, who)
                delivery_id = base64.urlsafe_b64encode(delivery_ids.randbytes(20)).decode()
                stats.deliveries += 1
                base = self._delivery_properties(message, who, delivery_id)
            plan = plan[: self.events - stats.events]
            # Follow-ups that would fall after now are drawn closer (keeping their order):
            # they all still happen, just sooner, and none is in the future.
            remaining = now_ts - created
            if created + plan[-1][0] >= now_ts - 1:
                span = max(remaining - 1, 0.001)
                plan = [(span * o / (o + span), e, x) for o, e, x in plan]
            context = {"traits": {"email": who.email}}
            hold_first = len(plan) > 1 and rng.random() < OUT_OF_ORDER_SHARE / 0.75
            for index, (offset, etype, extra) in enumerate(plan):
                ts = created + offset
                if etype.channel is Channel.SUBSCRIPTION:
                    properties: dict[str, Any] = {
                        "customer_id": who.customer_id,
                        "email_address": who.email,
                        "userId": who.customer_id,
                    }
                else:
                    assert base is not None and message is not None
                    properties = dict(base)
                    if message.channel is Channel.PUSH:
                        recipient = {
                            "device_id": who.device_id,
                            "device_platform": who.device_platform,
                        }
                        if (
                            extra
                            and "failure_message" in extra
                            and etype.metric is not Metric.FAILED
                        ):
                            recipient["failure_message"] = extra["failure_message"]
                            extra = {k: v for k, v in extra.items() if k != "failure_message"}
                        properties["recipients"] = [recipient]
                if extra:
                    properties.update(extra)
                stamp = _iso(ts)
                call = {
                    "type": "track",
                    "event": etype.name,
                    "userId": who.customer_id,
                    "messageId": message_ids.randbytes(13).hex().upper(),  # ULID-like, 26 chars
                    "timestamp": stamp,
                    "originalTimestamp": stamp,
                    "sentAt": _iso(min(ts + rng.uniform(0.05, 2.5), now_ts)),
                    "context": context,
                    "properties": properties,
                }
                stats.events += 1
                stats.by_event[etype.name] = stats.by_event.get(etype.name, 0) + 1
                if index == 0 and hold_first:
                    # Handed over late: its successors reach the ingest first.
                    stats.late += 1
                    heapq.heappush(late, (stats.calls + rng.randint(*LATE_BY), order, call))
                    order += 1
                else:
                    yield from emit(call)
                if rng.random() < DUPLICATE_SHARE:
                    repeat = dict(call)
                    repeat["sentAt"] = _iso(min(ts + rng.uniform(3, 600), now_ts))
                    stats.repeats += 1
                    if rng.random() < 0.5:
                        yield from emit(repeat)
                    else:
                        heapq.heappush(late, (stats.calls + rng.randint(*LATE_BY), order, repeat))
                        order += 1
            if stats.events >= self.events:
                break
        while late:
            stats.calls += 1
            yield heapq.heappop(late)[2]

    def _delivery_properties(
        self, message: Message, who: Person, delivery_id: str
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {"customer_id": who.customer_id, "delivery_id": delivery_id}
        properties.update(message.parent)
        channel = message.channel
        if channel is Channel.EMAIL:
            properties["recipient"] = who.email
            properties["subject"] = message.subject
        elif channel is Channel.SMS:
            properties["recipient"] = who.phone
        elif channel is Channel.IN_APP:
            properties["recipient"] = who.email
        elif channel in (Channel.WEBHOOK, Channel.SLACK):
            properties["recipient"] = message.recipient
        if channel is not Channel.EMAIL and message.content and channel is not Channel.SMS:
            properties["content"] = message.content
        properties["userId"] = who.customer_id
        return properties

    def _events_per_delivery(self) -> float:
        """Mean events per delivery, from a pilot over the same mix (its own random numbers)."""
        pilot = random.Random(f"demo-pilot:{self.seed}")
        weights = [h.cum_weights[-1] for h in self._hours]
        hours = pilot.choices(self._hours, weights=weights, k=1500)
        total = 0
        for hour in hours:
            message = pilot.choices(hour.messages, cum_weights=hour.cum_weights)[0]
            who = person(pilot.randrange(self._people))
            total += len(self._plan(pilot, message, who))
        return max(1.0, total / len(hours))


def _first(planned: Planned) -> float:
    return planned[0]


def demo_calls(
    *,
    events: int = DEFAULT_EVENTS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """The demo track calls: ``events`` distinct events (plus their repeats) over ``days``."""
    return iter(DemoStream(events=events, days=days, seed=seed, now=now))
