"""The demo stream: deliveries spread over the window's hours, their events as track calls,
handed over in the order a real sender would, some late, some twice.

The number of deliveries comes from the events asked for (a pilot over the same mix gives
events per delivery); each delivery picks its hour by the rhythm, then a message of that hour
and a person, and its events come from the funnel. Three random sequences, all from the seed:
one for the plans, one for message ids and one for delivery ids, so ids depend only on the
seed and on how many came before, never on the clock.
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

from metrics_source.demo.calls import delivery_properties, event_properties, iso, track_call
from metrics_source.demo.catalogue import Message, always_on_messages, burst_messages
from metrics_source.demo.funnel import Planned, plan_delivery, plan_subscription
from metrics_source.demo.people import person, pool_size
from metrics_source.demo.rhythm import SUBSCRIPTION_SHARE, Hour, plan_hours

DEFAULT_SEED = 20240601
DEFAULT_DAYS = 90
DEFAULT_EVENTS = 200_000

# Share of deliveries whose first event is handed over late, and of events sent twice.
OUT_OF_ORDER_SHARE = 0.03
DUPLICATE_SHARE = 0.01
# How many calls later a late event or a delayed repeat arrives: more than one ingest chunk
# (at most 2,500 calls, the batch limit), so it lands in a later transaction.
LATE_BY = (2_600, 9_000)


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
        self._hours = plan_hours(self.messages, self.start, self.now)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.events == 0 or not self._hours:
            return
        rng = random.Random(f"demo:{self.seed}")
        message_ids = random.Random(f"demo-message-ids:{self.seed}")
        delivery_ids = random.Random(f"demo-delivery-ids:{self.seed}")
        stats = self.stats
        late: list[tuple[int, int, dict[str, Any]]] = []  # (due at call number, order, call)
        order = 0

        def emit(call: dict[str, Any]) -> Iterator[dict[str, Any]]:
            """The call, then the late ones now due."""
            nonlocal order
            stats.calls += 1
            yield call
            while late and late[0][0] <= stats.calls:
                stats.calls += 1
                yield heapq.heappop(late)[2]
            order += 1

        def hold(call: dict[str, Any]) -> None:
            """Hand the call over thousands of calls later."""
            nonlocal order
            heapq.heappush(late, (stats.calls + rng.randint(*LATE_BY), order, call))
            order += 1

        for hour, created in self._deliveries(rng):
            if rng.random() < SUBSCRIPTION_SHARE:
                plan = plan_subscription(rng)
                who = person(rng.randrange(self._people))
                stats.subscription_changes += 1
                delivery: dict[str, Any] | None = None
            else:
                message = self._pick(rng, hour)
                who = person(rng.randrange(self._people))
                plan = plan_delivery(rng, message, who)
                delivery_id = base64.urlsafe_b64encode(delivery_ids.randbytes(20)).decode()
                stats.deliveries += 1
                delivery = delivery_properties(message, who, delivery_id)
            plan = self._fit(plan[: self.events - stats.events], created)
            context = {"traits": {"email": who.email}}
            hold_first = len(plan) > 1 and rng.random() < OUT_OF_ORDER_SHARE / 0.75
            for index, (offset, etype, extra) in enumerate(plan):
                ts = created + offset
                stamp = iso(ts)
                call = track_call(
                    etype=etype,
                    who=who,
                    message_id=message_ids.randbytes(13).hex().upper(),  # ULID-like, 26 chars
                    timestamp=stamp,
                    sent_at=iso(min(ts + rng.uniform(0.05, 2.5), self._now_ts)),
                    context=context,
                    properties=event_properties(etype, who, delivery, extra),
                )
                stats.events += 1
                stats.by_event[etype.name] = stats.by_event.get(etype.name, 0) + 1
                if index == 0 and hold_first:
                    # Handed over late: its successors reach the ingest first.
                    stats.late += 1
                    hold(call)
                else:
                    yield from emit(call)
                if rng.random() < DUPLICATE_SHARE:
                    repeat = dict(call)
                    repeat["sentAt"] = iso(min(ts + rng.uniform(3, 600), self._now_ts))
                    stats.repeats += 1
                    if rng.random() < 0.5:
                        yield from emit(repeat)
                    else:
                        hold(repeat)
            if stats.events >= self.events:
                break
        while late:
            stats.calls += 1
            yield heapq.heappop(late)[2]

    def _deliveries(self, rng: random.Random) -> Iterator[tuple[Hour, float]]:
        """Each delivery's hour and the moment it was created, hour by hour.

        Deliveries are planned from a pilot's events per delivery, a little short on purpose,
        so the last hours are never starved: a top-up spread over the whole window follows
        until the stream has its events."""
        target = 0.96 * self.events / self._events_per_delivery()
        cum_hours = list(accumulate(h.cum_weights[-1] for h in self._hours))
        total_weight = cum_hours[-1]
        planned = 0.0
        for hour, cum in zip(self._hours, cum_hours, strict=True):
            planned_here = target * cum / total_weight
            while planned < planned_here:
                planned += 1
                yield hour, rng.uniform(hour.start, hour.end)
        while True:
            hour = self._hours[bisect_right(cum_hours, rng.random() * total_weight) - 1]
            yield hour, rng.uniform(hour.start, hour.end)

    @staticmethod
    def _pick(rng: random.Random, hour: Hour) -> Message:
        weights = hour.cum_weights
        return hour.messages[bisect_right(weights, rng.random() * weights[-1])]

    def _fit(self, plan: list[Planned], created: float) -> list[Planned]:
        """Follow-ups that would fall after now drawn closer (keeping their order): they all
        still happen, just sooner, and none is in the future."""
        remaining = self._now_ts - created
        if created + plan[-1][0] < self._now_ts - 1:
            return plan
        span = max(remaining - 1, 0.001)
        return [(span * o / (o + span), e, x) for o, e, x in plan]

    def _events_per_delivery(self) -> float:
        """Mean events per delivery, from a pilot over the same mix (its own random numbers)."""
        pilot = random.Random(f"demo-pilot:{self.seed}")
        weights = [h.cum_weights[-1] for h in self._hours]
        hours = pilot.choices(self._hours, weights=weights, k=1500)
        total = 0
        for hour in hours:
            message = pilot.choices(hour.messages, cum_weights=hour.cum_weights)[0]
            who = person(pilot.randrange(self._people))
            total += len(plan_delivery(pilot, message, who))
        return max(1.0, total / len(hours))


def demo_calls(
    *,
    events: int = DEFAULT_EVENTS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """The demo track calls: ``events`` distinct events (plus their repeats) over ``days``."""
    return iter(DemoStream(events=events, days=days, seed=seed, now=now))
