"""The rollup as production runs it: a real Celery worker with beat, on the real broker,
keeps the summaries current with no one calling the service."""

from __future__ import annotations

import uuid

import pytest

from metrics_source.models import DeliverySummary, MetricCount, SummaryQueue
from tests.forwarding_support import celery_worker, store_events, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_with_beat_summarises_what_ingest_stores(tmp_path) -> None:
    queue = f"summaries-test-{uuid.uuid4().hex[:12]}"
    with celery_worker(tmp_path, queue, SUMMARIES_REFRESH_SECONDS="0.3"):
        store_events(25)
        wait_for(lambda: not SummaryQueue.objects.exists(), what="the queue drained")
    assert sum(MetricCount.objects.filter(basis=0).values_list("events", flat=True)) == 25
    assert DeliverySummary.objects.exists()
