"""The notice every dashboard page shows when the summaries lag behind ingest.

Events go in through the ingest service; the rollup is left not to run (as when no Celery
worker is up), and the events' arrival is moved back in time to make the backlog old.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from dashboard import selectors
from dashboard.pages.backlog import BACKLOG_NOTICE_AFTER, stale_backlog
from metrics_source.ingest.service import events_ingest_calls
from metrics_source.models import Event, SummaryQueue
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db

NOTICE = "The charts are behind"
PAGES = [
    reverse("dashboard:overview"),
    reverse("dashboard:channels"),
    reverse("dashboard:channel", args=["email"]),
    reverse("dashboard:campaigns"),
    reverse("dashboard:deliveries"),
    reverse("dashboard:person", args=["42"]),
]


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def ingest(count: int, *, first: int = 0) -> None:
    calls = [
        track_call(
            "Email Sent",
            message_id=f"backlog-{first + n}",
            properties={"delivery_id": f"d-{first + n}", "campaign_id": 5},
        )
        for n in range(count)
    ]
    result = events_ingest_calls(source=None, calls=calls)
    assert result.stored == count


def text(response) -> str:
    """The page's HTML with runs of whitespace (line breaks, no-break spaces) as one space."""
    return re.sub(r"\s+", " ", response.content.decode())


def received(ago: timedelta) -> None:
    Event.objects.update(received_at=datetime.now(UTC) - ago)


def test_no_backlog_once_the_rollup_has_run(admin) -> None:
    ingest(2)
    received(timedelta(hours=1))
    summaries_catch_up()
    assert selectors.summaries_backlog() is None
    assert NOTICE not in admin.get(PAGES[0]).content.decode()


def test_a_backlog_younger_than_a_minute_is_not_worth_a_notice(admin) -> None:
    ingest(3)
    backlog = selectors.summaries_backlog()
    assert backlog is not None and backlog.events == 3 and not backlog.capped
    assert stale_backlog() is None
    assert NOTICE not in admin.get(PAGES[0]).content.decode()


@pytest.mark.parametrize("url", PAGES)
def test_every_page_names_how_many_events_wait_and_since_when(admin, url) -> None:
    ingest(3)
    received(timedelta(minutes=5, seconds=30))
    body = text(admin.get(url))
    assert NOTICE in body
    assert "3 stored events, the oldest received 5 minutes ago, are not counted yet" in body
    assert "make run" in body


def test_one_waiting_event_is_singular(admin) -> None:
    ingest(1)
    received(timedelta(hours=2))
    body = text(admin.get(PAGES[0]))
    assert "1 stored event, the oldest received 2 hours ago, is not counted yet" in body


def test_the_notice_goes_once_the_rollup_catches_up(admin) -> None:
    ingest(2)
    received(timedelta(minutes=10))
    assert NOTICE in admin.get(PAGES[0]).content.decode()
    summaries_catch_up()
    assert NOTICE not in admin.get(PAGES[0]).content.decode()


def test_the_threshold_is_the_oldest_event_not_the_newest() -> None:
    ingest(1)
    received(BACKLOG_NOTICE_AFTER + timedelta(seconds=5))
    ingest(1, first=1)  # arrives now, behind the old one
    notice = stale_backlog()
    assert notice is not None and notice.events == "2 stored events"


def test_a_huge_backlog_is_counted_up_to_the_limit_only() -> None:
    ingest(1)
    received(timedelta(minutes=3))
    first_id = SummaryQueue.objects.get().event_ids[0]
    # A queue row of ids past the stored event (the count reads only the queue).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO summary_queue (event_ids) "
            "SELECT array_agg(%s + n) FROM generate_series(1, %s) AS n",
            [first_id, selectors.BACKLOG_COUNT_LIMIT + 5],
        )
    backlog = selectors.summaries_backlog()
    assert backlog is not None
    assert backlog.capped and backlog.events == selectors.BACKLOG_COUNT_LIMIT
    notice = stale_backlog()
    assert notice is not None and notice.events == "more than 100,000 stored events"
