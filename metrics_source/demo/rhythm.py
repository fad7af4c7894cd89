"""When the demo workspace sends: a daily and weekly rhythm, and bursts on send days.

``plan_hours`` splits the window into hours, each with the messages that can be sent in it
and how likely each is: the always-on messages follow the hour of day and day of week, and a
broadcast or newsletter issue sends most of its deliveries in the hours right after it goes
out, whatever the window's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate

from metrics_source.demo.catalogue import BROADCASTS, Message

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


@dataclass(slots=True)
class Hour:
    start: float  # the first moment a delivery can be created in this hour
    end: float
    messages: list[Message]
    cum_weights: list[float]


def _rhythm(hour_start: float) -> float:
    moment = datetime.fromtimestamp(hour_start, UTC)
    return HOURLY[moment.hour] * WEEKLY[moment.weekday()]


def _bursts(messages: list[Message], per_unit: float) -> dict[int, list[tuple[Message, float]]]:
    """Hour start -> the burst messages sending in that hour, with their weights."""
    bursts: dict[int, list[tuple[Message, float]]] = {}
    for message in messages:
        if message.send_at is None:
            continue
        if message.kind == "broadcast":
            in_broadcast = [m for m in messages if m.parent == message.parent]
            weight = BROADCAST_SHARE / len(BROADCASTS) / len(in_broadcast)
        else:
            weight = NEWSLETTER_SHARE * message.weight
        send_hour = int(message.send_at) // 3600 * 3600
        for offset, part in enumerate(BURST_HOURS):
            hour = send_hour + offset * 3600
            bursts.setdefault(hour, []).append((message, weight * part * per_unit))
    return bursts


def plan_hours(messages: list[Message], start: datetime, end: datetime) -> list[Hour]:
    """The window's hours (the first and last cut to it), each with its messages' weights."""
    start_ts, end_ts = start.timestamp(), end.timestamp()
    first = int(start_ts) // 3600 * 3600
    hour_starts = list(range(first, int(end_ts) + 1, 3600))
    rhythm = [_rhythm(h) * (min(h + 3600, end_ts) - max(h, start_ts)) / 3600 for h in hour_starts]
    always_on = [m for m in messages if m.send_at is None]
    always_weight = sum(m.weight for m in always_on)
    # Bursts get their share of all deliveries whatever the window's length.
    bursts = _bursts(messages, (sum(rhythm) or 1.0) / ALWAYS_ON_SHARE)
    hours = []
    for hour_start, hour_rhythm in zip(hour_starts, rhythm, strict=True):
        lo, hi = max(hour_start, start_ts), min(hour_start + 3600, end_ts)
        if hi <= lo:
            continue
        pairs = [(m, hour_rhythm * m.weight / always_weight) for m in always_on]
        pairs += bursts.get(hour_start, [])
        hours.append(
            Hour(
                start=lo,
                end=hi,
                messages=[m for m, _ in pairs],
                cum_weights=list(accumulate(w for _, w in pairs)),
            )
        )
    return hours
