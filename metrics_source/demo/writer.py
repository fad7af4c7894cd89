"""The demo stream stored through the ingest service, a chunk per transaction.

The calls go through ``events_ingest_calls`` exactly as the tracking API's do (same
validation, dedupe on messageId, summaries queued by ingest), attributed to a source named
"Demo data" and marked as imported. Memory stays flat: calls are generated while they are
stored. Running totals come back after each chunk, so a caller can show progress and say how
far an interrupted run got.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from django.db import transaction

from metrics_source.ingest.service import events_ingest_calls
from metrics_source.ingest.sources import source_create
from metrics_source.models import Origin, Source

SOURCE_NAME = "Demo data"


@dataclass(slots=True)
class DemoTotals:
    """What the chunks stored so far did."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # rejection error -> how many


def demo_source() -> Source:
    """The source demo events are attributed to, created the first time."""
    source = Source.objects.filter(name=SOURCE_NAME).first()
    if source is None:
        source, _ = source_create(name=SOURCE_NAME)
    return source


def demo_calls_store(
    *, source: Source, calls: Iterable[dict[str, Any]], chunk_size: int
) -> Iterator[DemoTotals]:
    """Store the calls, ``chunk_size`` per transaction; the running totals after each chunk
    (the same object, updated)."""
    totals = DemoTotals()
    calls = iter(calls)
    while chunk := list(islice(calls, chunk_size)):
        with transaction.atomic():
            result = events_ingest_calls(source=source, calls=chunk, origin=Origin.IMPORT)
        totals.stored += result.stored
        totals.duplicates += result.duplicates
        totals.rejected += len(result.rejected)
        for rejection in result.rejected:
            totals.reasons[rejection.error] = totals.reasons.get(rejection.error, 0) + 1
        yield totals
