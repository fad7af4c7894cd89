"""One delivery's events: the funnel walk, written once for every channel.

``plan_delivery`` walks a message's channel ``Funnel`` (from ``channels``): not sent at all, or
sent, then bounced, delivered or still on its way, then opened, clicked, converted,
unsubscribed or marked as spam, each with the channel's chances and delays and the message's
own rates. ``plan_subscription`` is the person-level change that has no delivery. A plan lists
(seconds after the delivery was created, event type, extra properties), earliest first.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from metrics_source.demo.catalogue import Message
from metrics_source.demo.channels import CONVERT_DELAY, FUNNELS, Funnel, Uniform
from metrics_source.demo.people import Person
from metrics_source.ingest.catalog import (
    EVENT_TYPES,
    PREFERENCES_CHANGED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Channel,
    EventType,
    Metric,
)

# One planned event: seconds after the delivery was created, its type, extra properties.
Planned = tuple[float, EventType, dict[str, Any] | None]

_EVENT = {(e.channel, e.metric): e for e in EVENT_TYPES if e.semantic}
# Adds one event of the delivery's channel to its plan: (at, metric, extra properties).
Add = Callable[..., None]
# A person who leaves a topic leaves every topic a few seconds later, if at all.
_EVERYWHERE_DELAY = Uniform(0.5, 5)


def event_type(channel: Channel, metric: Metric) -> EventType:
    """The catalogue's semantic event type for a channel and metric (KeyError if none)."""
    return _EVENT[(channel, metric)]


def plan_delivery(rng: random.Random, message: Message, who: Person) -> list[Planned]:
    """The events of one delivery of ``message`` to ``who``, earliest first."""
    funnel = FUNNELS[message.channel]
    plan: list[Planned] = []

    def add(at: float, metric: Metric, extra: dict[str, Any] | None = None) -> None:
        plan.append((at, event_type(funnel.channel, metric), extra))

    sent = _send(rng, funnel, message, add)
    if sent is None:
        return plan
    reached = sent  # the last step the person can act on: sent, or delivered
    delivered = None
    if funnel.bounces is not None:
        roll = rng.random()
        if roll < message.bounce_rate:
            failure = funnel.bounces.pick(rng).replace("{email}", who.email)
            add(sent + funnel.bounce_delay.draw(rng), Metric.BOUNCED, {"failure_message": failure})
            return plan
        if roll >= 1 - funnel.in_flight:
            return plan
        reached = delivered = sent + funnel.deliver_delay.draw(rng)
        add(delivered, Metric.DELIVERED)
    opened = _open(rng, funnel, message, who, reached, add)
    _click(rng, funnel, message, reached, opened, delivered, add)
    leave = funnel.unsubscribes
    if leave is not None and rng.random() < leave.share:
        base = opened if leave.after_open else reached
        if base is not None:
            at = base + leave.delay.draw(rng)
            if leave.channel_event:
                add(at, Metric.UNSUBSCRIBED)
                at += _EVERYWHERE_DELAY.draw(rng)
            if rng.random() < leave.everywhere:
                plan.append((at, UNSUBSCRIBED, {"object_type": leave.object_type}))
    if delivered is not None and funnel.spam and rng.random() < funnel.spam:
        add(delivered + funnel.spam_delay.draw(rng), Metric.SPAMMED)
    plan.sort(key=_first)
    return plan


def _send(rng: random.Random, funnel: Funnel, message: Message, add: Add) -> float | None:
    """Suppressed or failed (None), or sent, perhaps after a soft failure: when it was sent."""
    roll = rng.random()
    suppressed = funnel.suppressed.share if funnel.suppressed is not None else 0.0
    failed = suppressed + funnel.failed.share
    if funnel.suppressed is not None and roll < suppressed:
        add(0.0, Metric.SUPPRESSED, {"failure_message": funnel.suppressed.pick(rng)})
        return None
    if roll < failed:
        at = 0.0
        if funnel.attempts:
            add(0.0, Metric.ATTEMPTED, {"failure_message": rng.choice(funnel.attempts)})
            at = funnel.fail_after.draw(rng)
        add(at, Metric.FAILED, {"failure_message": funnel.failed.pick(rng)})
        return None
    sent = funnel.send_delay.draw(rng)
    if roll < failed + funnel.retried:
        add(0.0, Metric.ATTEMPTED, {"failure_message": rng.choice(funnel.attempts)})
        sent += funnel.retry_delay.draw(rng)
    add(sent, Metric.SENT, {"content": message.content} if funnel.content_on_sent else None)
    return sent


def _open(
    rng: random.Random, funnel: Funnel, message: Message, who: Person, after: float, add: Add
) -> float | None:
    """The first open (when the message was opened at all), and any later one."""
    opens = funnel.opens
    if opens is None:
        return None
    chance = message.open_rate * (who.engagement if opens.by_engagement else 1.0)
    if rng.random() >= chance:
        return None

    def flags(machine: bool = False, proxied: bool = False) -> dict[str, Any] | None:
        if not opens.flagged:
            return None
        return {"prefetched": machine and not proxied, "proxied": machine and proxied}

    if opens.machine_delay is not None and rng.random() < message.machine_open_share:
        opened = after + opens.machine_delay.draw(rng)
        add(opened, Metric.OPENED, flags(machine=True, proxied=rng.random() < opens.proxied))
        again = opens.machine_again
    else:
        opened = after + opens.delay.draw(rng)
        add(opened, Metric.OPENED, flags())
        again = opens.again
    if again and rng.random() < again:
        add(opened + opens.delay.draw(rng), Metric.OPENED, flags())
    return opened


def _click(
    rng: random.Random,
    funnel: Funnel,
    message: Message,
    reached: float,
    opened: float | None,
    delivered: float | None,
    add: Add,
) -> None:
    """Link scanners' clicks, the person's clicks and what they lead to."""
    clicks = funnel.clicks
    if clicks is None or not message.links:
        return

    def click(at: float, machine: bool = False) -> None:
        link = rng.choices(range(len(message.links)), cum_weights=message.link_weights)[0]
        extra: dict[str, Any] = {"href": message.links[link], "link_id": message.link_ids[link]}
        if clicks.flagged:
            extra["machine"] = machine
        if clicks.tracked_response:
            extra["tracked_response"] = "cta_primary" if link == 0 else "cta_secondary"
        add(at, Metric.CLICKED, extra)

    # A link scanner follows a link seconds after delivery.
    scanned = clicks.scanners and rng.random() < clicks.scanners * message.click_rate
    if delivered is not None and scanned:
        click(delivered + clicks.scanner_delay.draw(rng), machine=True)
    if funnel.opens is None:
        base: float | None = reached
        chance = clicks.share * message.click_rate
    else:  # clicks follow an open; per delivery they keep the click rate
        base = opened
        chance = clicks.share * message.click_rate / message.open_rate
    if base is None:
        return
    if rng.random() < chance:
        clicked = base + clicks.delay.draw(rng)
        click(clicked)
        if clicks.again and rng.random() < clicks.again:
            click(clicked + clicks.again_delay.draw(rng))
        if clicks.converts and rng.random() < message.convert_rate:
            add(clicked + CONVERT_DELAY.draw(rng), Metric.CONVERTED)
    elif clicks.converts_unclicked and rng.random() < clicks.converts_unclicked:
        add(base + CONVERT_DELAY.draw(rng), Metric.CONVERTED)


def plan_subscription(rng: random.Random) -> list[Planned]:
    """A person-level change: subscribed, preferences changed, or unsubscribed from all."""
    roll = rng.random()
    if roll < 0.55:
        return [(0.0, SUBSCRIBED, {"object_type": "customer"})]
    if roll < 0.85:
        topic = rng.randint(1, 8)
        content = f'{{"topics":{{"topic_{topic}":{"true" if rng.random() < 0.4 else "false"}}}}}'
        return [(0.0, PREFERENCES_CHANGED, {"object_type": "customer", "content": content})]
    return [(0.0, UNSUBSCRIBED, {"object_type": "customer"})]


def _first(planned: Planned) -> float:
    return planned[0]
