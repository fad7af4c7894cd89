"""The demo writer: the stream stored through the ingest service, a chunk per transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metrics_source.demo import demo_calls
from metrics_source.demo.writer import SOURCE_NAME, demo_calls_store, demo_source
from metrics_source.models import Event, Origin, Source

NOW = datetime(2026, 4, 15, 12, 30, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_running_totals_after_each_chunk_count_rejections_with_their_reason():
    calls = list(demo_calls(events=250, seed=4, now=NOW))
    calls.insert(120, ["not", "a", "call"])
    source = demo_source()
    after_each = [
        (t.stored, t.duplicates, t.rejected, dict(t.reasons))
        for t in demo_calls_store(source=source, calls=iter(calls), chunk_size=100)
    ]
    assert len(after_each) == -(-len(calls) // 100)
    stored = [row[0] for row in after_each]
    assert stored == sorted(stored) and stored[-1] == Event.objects.count() == 250
    assert after_each[0][2] == 0
    assert after_each[-1][1] == len(calls) - 1 - 250  # the stream's own repeats
    assert after_each[-1][2:] == (1, {"each call must be a JSON object": 1})
    assert set(Event.objects.values_list("origin", flat=True).distinct()) == {Origin.IMPORT}


def test_the_demo_source_is_created_once():
    first = demo_source()
    assert demo_source() == first
    assert Source.objects.filter(name=SOURCE_NAME).count() == 1
