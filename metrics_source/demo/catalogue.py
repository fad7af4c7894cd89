"""What the demo workspace ("Northwind") sends, as data: its campaigns, transactional
messages, broadcasts and weekly newsletter, each message with its channel, text and links.

``always_on_messages`` are the campaigns' actions and the transactional messages, sent every
day; ``burst_messages`` are the broadcasts and newsletter issues of a window, each sent in one
go. Each ``Message`` draws its own funnel rates from its channel's ranges, seeded by its name,
so the same message always converts the same way and messages differ from one another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from metrics_source.demo.channels import FUNNELS
from metrics_source.ingest.catalog import Channel

EMAIL, PUSH, SMS = Channel.EMAIL, Channel.PUSH, Channel.SMS
IN_APP, WEBHOOK, SLACK = Channel.IN_APP, Channel.WEBHOOK, Channel.SLACK


@dataclass(frozen=True, slots=True)
class Spec:
    """One message as written: ``text`` is an email's subject or another channel's content,
    ``paths`` its links on northwind.example (space-separated, the main call to action
    first), ``recipient`` a Slack channel or webhook URL (people are the others')."""

    id: int  # the action id, or the transactional message id
    channel: Channel
    name: str
    text: str
    paths: str = ""
    recipient: str | None = None
    weight: float = 0.0  # a transactional message's share of the always-on sends


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    journey_id: str
    slug: str  # utm_campaign of its links
    weight: float  # share of the always-on sends, split evenly among its actions
    actions: tuple[Spec, ...]


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    where: float  # how far into the window it goes out
    slug: str
    actions: tuple[Spec, ...]


CAMPAIGNS = (
    Campaign(101, "01HV7J4T1W6X8Q2M3N5P7R9S0A", "welcome", 0.17, (
        Spec(1011, EMAIL, "Welcome: welcome email", "Welcome to Northwind!",
             "start docs/quickstart pricing blog"),
        Spec(1012, EMAIL, "Welcome: getting started tips",
             "3 tips to get the most out of Northwind", "docs/tips templates community"),
        Spec(1013, PUSH, "Welcome: finish setup push", "Finish setting up your account",
             "app/setup"),
    )),
    Campaign(102, "01HV7J6B3C5D7E9F1G3H5J7K9M", "onboarding", 0.11, (
        Spec(1021, IN_APP, "Onboarding: product tour", "Take the 2-minute product tour",
             "app/tour app/settings"),
        Spec(1022, EMAIL, "Onboarding: complete your profile",
             "You're almost there: complete your profile", "app/profile help/profile privacy"),
        Spec(1023, SMS, "Onboarding: SMS reminder",
             "Northwind: your workspace is ready. Finish setup: nwd.example/s", "app/setup"),
    )),
    Campaign(103, "01HV7J8N2P4Q6R8S0T2V4W6X8Y", "cart", 0.14, (
        Spec(1031, EMAIL, "Abandoned cart: reminder email", "You left something in your cart",
             "cart shop/bestsellers help/shipping returns"),
        Spec(1032, SMS, "Abandoned cart: SMS nudge",
             "Your cart is waiting - complete your order: nwd.example/c", "cart"),
        Spec(1033, PUSH, "Abandoned cart: push nudge",
             "Still thinking it over? Your cart is saved", "cart"),
    )),
    Campaign(104, "01HV7JA1B3C5D7E9F1G3H5J7K9", "winback", 0.07, (
        Spec(1041, EMAIL, "Win-back: 20% off", "We miss you - here's 20% off",
             "shop?code=COMEBACK20 shop/new preferences"),
        Spec(1042, PUSH, "Win-back: push offer", "20% off everything, this week only", "shop"),
    )),
    Campaign(105, "01HV7JC4D6E8F0G2H4J6K8M0N2", "usage", 0.06, (
        Spec(1051, SLACK, "Usage alerts: team Slack",
             "Usage alert: workspace reached 80% of its plan", "app/billing app/usage",
             recipient="#customer-alerts"),
        Spec(1052, WEBHOOK, "Usage alerts: CRM sync webhook", "POST usage snapshot to CRM",
             "app/usage", recipient="https://crm.example.com/hooks/northwind/usage"),
    )),
    Campaign(106, "01HV7JE5F7G9H1J3K5M7N9P1Q3", "trial", 0.09, (
        Spec(1061, EMAIL, "Trial ending: email", "Your trial ends in 3 days",
             "app/billing pricing contact-sales"),
        Spec(1062, IN_APP, "Trial ending: in-app banner", "Your trial ends soon - pick a plan",
             "pricing"),
        Spec(1063, SLACK, "Trial ending: sales Slack", "Trial ending for an active account",
             "crm/account", recipient="#sales-pipeline"),
    )),
)  # fmt: skip

TRANSACTIONAL = (
    Spec(41, EMAIL, "Password reset", "Password reset request", "reset", weight=0.11),
    Spec(42, EMAIL, "Order confirmation", "Your Northwind order is confirmed",
         "orders help/orders", weight=0.12),
    Spec(43, PUSH, "Order shipped", "Your order has shipped", "orders/track", weight=0.07),
    Spec(44, SMS, "Sign-in code", "Your Northwind sign-in code is 482913", weight=0.06),
)  # fmt: skip

BROADCASTS = (
    Broadcast(201, 0.18, "spring-sale", (
        Spec(2011, EMAIL, "Spring sale: announcement", "Spring sale: 30% off everything",
             "sale sale/new sale/bestsellers stores"),
        Spec(2012, PUSH, "Spring sale: push", "Spring sale is live: 30% off", "sale"),
    )),
    Broadcast(202, 0.43, "dashboards", (
        Spec(2021, EMAIL, "New feature: dashboards email",
             "New: dashboards for your whole team",
             "features/dashboards docs/dashboards webinar"),
        Spec(2022, IN_APP, "New feature: dashboards in-app", "Try the new dashboards",
             "app/dashboards"),
    )),
    Broadcast(203, 0.66, "maintenance", (
        Spec(2031, EMAIL, "Maintenance notice: email",
             "Scheduled maintenance on Sunday, 02:00-04:00 UTC", "status"),
        Spec(2032, SMS, "Maintenance notice: SMS",
             "Northwind maintenance Sunday 02:00-04:00 UTC. Status: nwd.example/st", "status"),
    )),
    Broadcast(204, 0.88, "early-access", (
        Spec(2041, EMAIL, "Early access: email", "You're invited: early access to Northwind Pro",
             "pro pro/pricing pro/faq"),
        Spec(2042, SMS, "Early access: SMS",
             "Early access to Northwind Pro is open: nwd.example/pro", "pro"),
        Spec(2043, PUSH, "Early access: push", "Northwind Pro early access is open", "pro"),
    )),
)  # fmt: skip

# The newsletter goes out on Tuesdays at 14:00 UTC in two subject-line variants (content 1, 2).
NEWSLETTER_WEEKDAY, NEWSLETTER_HOUR = 1, 14
NEWSLETTER_SUBJECTS = (
    "The Northwind Weekly - {issue}",
    "This week at Northwind: what's new ({issue})",
)
NEWSLETTER_PATHS = "blog/latest changelog events"


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
        draw = random.Random(f"rates:{self.kind}:{self.name}").uniform  # stable per message
        ranges = FUNNELS[self.channel].rates
        if ranges.open is not None:
            self.open_rate = draw(*ranges.open)
        self.click_rate = draw(*ranges.click)
        if ranges.bounce is not None:
            self.bounce_rate = draw(*ranges.bounce)
        if ranges.machine_open is not None:
            self.machine_open_share = draw(*ranges.machine_open)
        self.convert_rate = draw(*ranges.convert)
        base = 1_000 + sum(map(ord, self.name)) * 7 + int(self.parent.get("action_id", 0)) % 97
        self.link_ids = tuple(base * 10 + i for i in range(len(self.links)))
        # Skewed popularity: the first link (the main call to action) takes most clicks.
        self.link_weights = tuple(accumulate(1 / (i + 1) ** 1.6 for i in range(len(self.links))))


def _links(slug: str, paths: str) -> tuple[str, ...]:
    return tuple(
        f"https://northwind.example/{path}?utm_source=customerio&utm_campaign={slug}"
        for path in paths.split()
    )


def _message(spec: Spec, kind: str, parent: dict[str, Any], slug: str, **more: Any) -> Message:
    email = spec.channel is EMAIL
    return Message(
        name=spec.name,
        kind=kind,
        channel=spec.channel,
        parent=parent,
        subject=spec.text if email else None,
        content="" if email else spec.text,
        recipient=spec.recipient,
        links=_links(slug, spec.paths),
        **more,
    )


def always_on_messages() -> list[Message]:
    """Campaigns and transactional messages: they send every day, following the rhythm."""
    messages = [
        _message(
            action,
            "campaign",
            {"campaign_id": c.id, "action_id": action.id, "journey_id": c.journey_id},
            c.slug,
            weight=c.weight / len(c.actions),
        )
        for c in CAMPAIGNS
        for action in c.actions
    ]
    messages += [
        _message(tx, "transactional", {"transactional_message_id": tx.id}, "tx", weight=tx.weight)
        for tx in TRANSACTIONAL
    ]
    return messages


def _weekday_at(moment: datetime, hour: int) -> datetime:
    """The moment's day at the given UTC hour, moved to Monday when it falls on a weekend."""
    day = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def burst_messages(start: datetime, end: datetime) -> list[Message]:
    """Broadcasts (at fixed points of the window) and the weekly newsletter's issues, each
    sent in one go."""
    messages: list[Message] = []
    span = end - start
    for broadcast in BROADCASTS:
        send_at = _weekday_at(start + span * broadcast.where, 10 if broadcast.id % 2 else 15)
        send_at = min(max(send_at, start), end - timedelta(minutes=30))
        for action in broadcast.actions:
            parent = {"broadcast_id": broadcast.id, "action_id": action.id}
            messages.append(
                _message(action, "broadcast", parent, broadcast.slug, send_at=send_at.timestamp())
            )
    send_days = []
    day = start.replace(hour=NEWSLETTER_HOUR, minute=0, second=0, microsecond=0)
    while day < end:
        if day.weekday() == NEWSLETTER_WEEKDAY and start <= day:
            send_days.append(day)
        day += timedelta(days=1)
    if not send_days:  # a window shorter than a week still gets one issue
        send_days = [start + span / 2]
    for send_day in send_days:
        iso_year, iso_week, _ = send_day.isocalendar()
        issue = f"week {iso_week}, {iso_year}"
        for content_id, subject in enumerate(NEWSLETTER_SUBJECTS, start=1):
            variant = Spec(
                content_id,
                EMAIL,
                f"Weekly newsletter {issue} ({'AB'[content_id - 1]})",
                subject.format(issue=issue),
                NEWSLETTER_PATHS,
            )
            parent = {"newsletter_id": iso_year * 100 + iso_week, "content_id": content_id}
            messages.append(
                _message(
                    variant,
                    "newsletter",
                    parent,
                    f"weekly-{iso_year}-{iso_week}",
                    send_at=send_day.timestamp(),
                    weight=1 / len(send_days) / len(NEWSLETTER_SUBJECTS),
                )
            )
    return messages
