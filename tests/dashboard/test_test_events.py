"""The project's own test events ("Send a test event" posts a real "Email Delivered", marked
``"test": true``) are stored, and shown on their delivery's timeline with the mark, but no
chart, funnel or list counts them: a receiving metrics-source's delivered count went from
8,180 to 8,181 for one click on "Send a test event"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from metrics_source.forwarding.probe import test_event as probe_test_event
from metrics_source.ingest.mapping import iso
from metrics_source.ingest.service import events_ingest_calls
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def delivered_in_sql(*, with_tests: bool) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT delivery_id) FROM metrics_source_event"
            " WHERE event = 'Email Delivered'"
            " AND (%s OR NOT COALESCE(properties->>'test' = 'true', false))",
            [with_tests],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def stored() -> str:
    """Three real deliveries, and the test event the probe sends; returns its delivery id."""
    real = [
        track_call(
            name,
            message_id=f"real-{name}-{n}",
            properties={"delivery_id": f"real-d{n}", "campaign_id": 3},
            timestamp=iso(timezone.now() - timedelta(hours=2)),
        )
        for n in range(3)
        for name in ("Email Sent", "Email Delivered")
    ]
    test = probe_test_event("test-probe-1")
    result = events_ingest_calls(source=None, calls=[*real, test])
    assert result.stored == 7 and not result.rejected
    summaries_catch_up()
    return test["properties"]["delivery_id"]


def test_no_chart_counts_a_test_event(admin, stored) -> None:
    assert delivered_in_sql(with_tests=True) == 4  # it is stored
    expected = delivered_in_sql(with_tests=False)
    assert expected == 3
    overview = admin.get(reverse("dashboard:overview"), {"period": "7d"})
    tiles = {tile.label: tile.value for tile in overview.context["tiles"]}
    assert tiles["Delivered"] == str(expected)
    channel = admin.get("/channels/email/?period=7d")
    steps = {step["metric"]: step["count"] for step in channel.context["funnel_steps"]}
    assert steps["delivered"] == expected
    listed = admin.get("/deliveries/?period=7d&channel=email&reached=delivered").context
    assert listed["total"] == expected
    assert stored not in {row["delivery_id"] for row in listed["rows"]}


def test_the_timeline_shows_the_mark(admin, stored) -> None:
    page = admin.get(reverse("dashboard:delivery", args=[stored]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "This delivery is a test" in body and "every chart, funnel and list" in body
    assert page.context["test_events"] == 1
    assert [event["test"] for event in page.context["events"]] == [True]
    real = admin.get(reverse("dashboard:delivery", args=["real-d0"]))
    assert "is a test" not in real.content.decode()
