"""Demo data: a deterministic stream of realistic message-activity track calls.

``DemoStream`` plays a fictional workspace ("Northwind") over the last N days: campaigns,
broadcasts, newsletters and transactional messages on every channel, sent with a daily and
weekly rhythm (broadcasts and newsletters spike on their send day), each delivery walking a
plausible funnel with plausible delays, plus person-level subscription changes. The calls are
Segment-style track calls in Customer.io's semantic format, ready for
``metrics_source.ingest.service.events_ingest_calls``; ``writer`` stores them through it.

Reproducible: everything but the timestamps depends only on the seed and the sizes, and each
stored event's ``messageId`` is the k-th id of the seed's id sequence, so a second run with the
same seed stores nothing new whenever it runs. Timestamps follow the clock (the window ends
now) and never pass it. A stream is generated lazily, so memory stays flat for millions of calls.

On purpose, like real senders: a few percent of deliveries hand one event over thousands of
calls late (so it arrives after the events that followed it), and about one event in a hundred
is sent twice with the same ``messageId``.

The parts: ``catalogue`` (what the workspace sends, as data), ``channels`` (each channel's
funnel, as data), ``funnel`` (one delivery's events, from those), ``people``, ``rhythm`` (when
it sends), ``calls`` (an event as a track call), ``stream`` (the whole stream, in order) and
``writer`` (the stream stored through the ingest service).
"""

from metrics_source.demo.stream import (
    DEFAULT_DAYS,
    DEFAULT_EVENTS,
    DEFAULT_SEED,
    DemoStats,
    DemoStream,
    demo_calls,
)

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_EVENTS",
    "DEFAULT_SEED",
    "DemoStats",
    "DemoStream",
    "demo_calls",
]
