"""The overview page and the reads behind it, against hand-computed figures.

Events go in through the ingest service and the rollup, as in production; every expected
number below is worked out by hand from the events of the test.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.urls import reverse

from dashboard import selectors
from dashboard.filters import filters_from_query
from dashboard.rates import MetricTotal, rates_for
from metrics_source.ingest.service import events_ingest_calls
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


_counter = iter(range(1_000_000))


def ev(name: str, delivery: str | None, hours_ago: float, **props) -> dict:
    properties = {"campaign_id": 3, **props}
    if delivery:
        properties["delivery_id"] = delivery
    return track_call(
        name, message_id=f"m{next(_counter)}", timestamp=ago(hours_ago), properties=properties
    )


def store(*calls: dict) -> None:
    result = events_ingest_calls(source=None, calls=list(calls))
    assert not result.rejected, result.rejected
    summaries_catch_up()


@pytest.fixture
def activity() -> None:
    """Email: 3 sent, 2 delivered, 1 bounced, 1 opened (twice, the first a machine's),
    1 clicked. Push: 2 sent, 2 delivered, 1 opened. In-app: 2 sent, 1 opened. One email
    sent 40 days ago (the previous period) that was delivered."""
    store(
        ev("Email Sent", "e1", 50),
        ev("Email Delivered", "e1", 49.9),
        ev("Email Opened", "e1", 40, prefetched=True),
        ev("Email Opened", "e1", 30),
        ev("Email Link Clicked", "e1", 29, href="https://example.com/x"),
        ev("Email Sent", "e2", 20),
        ev("Email Delivered", "e2", 19.9),
        ev("Email Sent", "e3", 10),
        ev("Email Bounced", "e3", 9.9, failure_message="550 no such user"),
        ev("Push Sent", "p1", 5),
        ev("Push Delivered", "p1", 4.9),
        ev("Push Opened", "p1", 4),
        ev("Push Sent", "p2", 3),
        ev("Push Delivered", "p2", 2.9),
        ev("In-App Sent", "i1", 8),
        ev("In-App Opened", "i1", 7),
        ev("In-App Sent", "i2", 6),
        ev("Email Sent", "old", 24 * 40),
        ev("Email Delivered", "old", 24 * 40 - 1),
        # Activity before the previous period began, so that period is fully known.
        track_call("Subscribed", message_id="early", timestamp=ago(24 * 70), properties={}),
    )


def test_totals_and_rates_follow_customerio_definitions(activity) -> None:
    filters = filters_from_query({})  # type: ignore[arg-type]
    totals = selectors.totals_by_channel(filters)
    assert {c: {m: t.deliveries for m, t in ts.items()} for c, ts in totals.items()} == {
        "email": {"sent": 3, "delivered": 2, "opened": 1, "clicked": 1, "bounced": 1},
        "push": {"sent": 2, "delivered": 2, "opened": 1},
        "in_app": {"sent": 2, "opened": 1},
    }
    assert totals["email"]["opened"].events == 2 and totals["email"]["opened"].machine_events == 1
    rates = rates_for(totals)
    assert rates["delivery_rate"] == pytest.approx(4 / 5)  # email + push only
    # Delivered base: email 2 + push 2 + in-app's sent 2 (no delivered step) = 6.
    assert rates["open_rate"] == pytest.approx(3 / 6)
    assert rates["click_rate"] == pytest.approx(1 / 6)
    assert rates["click_to_open"] == pytest.approx(1 / 3)
    # In-app messages cannot bounce: 1 bounce over 3 emails and 2 pushes sent.
    assert rates["bounce_rate"] == pytest.approx(1 / 5)
    assert rates["conversion_rate"] == 0
    assert rates_for({"sms": totals["email"]})["open_rate"] is None  # SMS has no opens
    # Preference-centre unsubscribes are not unsubscribes of delivered messages.
    with_subscription = {**totals, "subscription": {"unsubscribed": MetricTotal(deliveries=5)}}
    assert rates_for(with_subscription)["unsubscribe_rate"] == 0


def test_overview_page_shows_the_figures(client, admin_user, activity) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 200
    tiles = {tile.label: tile for tile in response.context["tiles"]}
    assert tiles["Sent"].value == "7"
    assert tiles["Delivered"].value == "4"
    assert tiles["Delivery rate"].value == "80.0%"
    assert tiles["Open rate"].value == "50.0%"
    assert tiles["Open rate"].detail == "human opens 50.0%"  # e1's later open was human
    assert tiles["Bounce rate"].value == "20.0%"
    assert tiles["Bounce rate"].detail == "over Email, Push"  # in-app cannot bounce
    assert tiles["Delivered"].detail == "over Email, Push"  # in-app reports no delivery
    # The previous 30 days had one email sent and delivered.
    assert tiles["Sent"].change == "+600.0% vs previous" and tiles["Sent"].tone == "good"
    assert tiles["Delivery rate"].change == "-20.0 pts vs previous"
    assert tiles["Delivery rate"].tone == "bad"
    assert response["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
    body = response.content.decode()
    assert "<script>" not in body and "onclick" not in body  # no inline script at all
    for name in ("series", "channels", "funnel"):
        assert f'id="figure-{name}"' in body


def test_funnel_steps_link_to_their_deliveries(client, admin_user, activity) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:overview"), {"period": "7d"})
    funnel = response.context["page"].datasets["funnel"].rows
    assert ("email", "sent", 3) in funnel and ("email", "clicked", 1) in funnel
    assert ("in_app", "opened", 1) in funnel
    assert not any(row[0] == "in_app" and row[1] == "delivered" for row in funnel)
    figure = response.context["page"].charts["funnel"].figure
    email = next(trace for trace in figure["data"] if trace["name"] == "Email")
    assert email["customdata"][2] == "/deliveries/?period=7d&channel=email&reached=opened"


def test_no_change_is_shown_against_a_period_before_the_first_activity(client, admin_user) -> None:
    store(ev("Email Sent", "n1", 40 * 24), ev("Email Sent", "n2", 5))
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:overview"))
    assert all(tile.change == "" for tile in response.context["tiles"])
    assert "starts before the first recorded activity" in response.content.decode()


def test_csv_download_of_a_table(client, admin_user, activity) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:overview"), {"download": "channels"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["channel", "sent", "delivered"]
    assert rows[1][:3] == ["email", "3", "2"]
    assert client.get(reverse("dashboard:overview"), {"download": "nope"}).status_code == 404


def test_send_date_basis_files_activity_under_the_send_hour(client, admin_user) -> None:
    # Sent 30 hours ago, opened 2 hours ago. Over the last 24 hours, by event time only the
    # open counts; by send date nothing does (the delivery's cohort is 30 hours ago).
    store(
        ev("Email Sent", "c1", 30), ev("Email Delivered", "c1", 29.9), ev("Email Opened", "c1", 2)
    )
    event_basis = selectors.totals_by_channel(filters_from_query({"period": "24h"}))  # type: ignore[arg-type]
    sent_basis = selectors.totals_by_channel(
        filters_from_query({"period": "24h", "basis": "sent"})  # type: ignore[arg-type]
    )
    assert {m: t.deliveries for m, t in event_basis["email"].items()} == {"opened": 1}
    assert sent_basis == {}  # its send is 30 hours ago: outside the last 24 h cohort


@override_settings(TIME_ZONE="America/New_York")
def test_series_buckets_days_in_the_display_time_zone() -> None:
    # 03:00 and 05:00 UTC on 2026-11-10 are 22:00 on the 9th and 00:00 on the 10th in New York.
    store(
        track_call("Subscribed", message_id="s1", timestamp="2026-11-10T03:00:00Z", properties={}),
        track_call("Subscribed", message_id="s2", timestamp="2026-11-10T05:00:00Z", properties={}),
    )
    filters = filters_from_query(
        {"period": "custom", "from": "2026-11-01", "to": "2026-11-30", "interval": "day"}  # type: ignore[arg-type]
    )
    points = selectors.metric_series(filters)
    assert [(p.start.date().isoformat(), p.metric, p.deliveries) for p in points] == [
        ("2026-11-09", "subscribed", 1),
        ("2026-11-10", "subscribed", 1),
    ]


def test_invalid_filters_fall_back_with_a_notice(client, admin_user, activity) -> None:
    client.force_login(admin_user)
    response = client.get(
        reverse("dashboard:overview"),
        {
            "period": "forever",
            "interval": "minute",
            "channel": "fax",
            "parent": "x:1",
            "source": "a",
        },
    )
    assert response.status_code == 200
    notices = response.context["filters"].notices
    assert len(notices) == 5
    body = response.content.decode()
    assert "Unknown period &#x27;forever&#x27;" in body


def test_empty_state_explains_what_to_do(client, admin_user) -> None:
    client.force_login(admin_user)
    body = client.get(reverse("dashboard:overview")).content.decode()
    assert "No events yet" in body and "demo_data" in body and "/v1/track" in body


def test_login_required(client) -> None:
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_overview_makes_a_fixed_number_of_queries(
    client, admin_user, activity, django_assert_num_queries
) -> None:
    client.force_login(admin_user)
    # Session and user; the idle session's renewal (savepoint, update, release); series and
    # totals now (one scan); totals before; first activity; the filter options (parents,
    # sources); the summaries' backlog.
    with django_assert_num_queries(11):
        assert client.get(reverse("dashboard:overview")).status_code == 200
