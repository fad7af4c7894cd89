"""Dates at the ends of the calendar: a custom period outside the plausible window is refused
with a notice (the page shows the default period), and stored events timestamped in year 1
or 9999 leave every page that shows them rendering, in any time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics_source.models import Event
from metrics_source.summaries.rollup import summaries_catch_up
from tests.dashboard.test_deliveries import at, call, ingest

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/channels/",
    "/channels/email/",
    "/campaigns/",
    "/campaigns/campaign/7/",
    "/deliveries/",
    "/deliveries/?q=p-1",
]
TOMORROW = timezone.localdate() + timedelta(days=1)


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def campaign(db):
    ingest(call("Email Sent", "c-1", at(1), "d-c", "p-1", campaign_id=7, subject="Hi"))
    summaries_catch_up()


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("9999-12-31", "9999-12-31"),
        ("0001-01-01", "0001-01-01"),
        ("0001-01-01", "0001-01-02"),
        ("1999-12-31", "2000-01-05"),  # starts a day early
        (TOMORROW.isoformat(), (TOMORROW + timedelta(days=1)).isoformat()),  # ends a day late
    ],
)
def test_custom_dates_outside_the_window_are_refused(admin, campaign, url, first, last):
    sep = "&" if "?" in url else "?"
    response = admin.get(f"{url}{sep}period=custom&from={first}&to={last}")
    assert response.status_code == 200
    assert response.context["filters"].period == "30d"
    html = response.content.decode()
    assert f"Custom dates must fall between 2000-01-01 and {TOMORROW.isoformat()}" in html


def test_custom_dates_at_the_window_s_edges_are_accepted(admin, campaign):
    for first, last in (("2000-01-01", "2000-01-31"), (TOMORROW - timedelta(days=2), TOMORROW)):
        response = admin.get(f"/?period=custom&from={first}&to={last}")
        assert response.status_code == 200
        assert response.context["filters"].period == "custom"
        assert not response.context["filters"].notices


def test_the_date_pickers_offer_only_the_window(admin, campaign):
    html = admin.get("/?period=custom&from=2026-01-01&to=2026-01-31").content.decode()
    assert f'min="2000-01-01" max="{TOMORROW.isoformat()}"' in html


EXTREMES = [
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
@pytest.mark.parametrize("when", EXTREMES, ids=["year-9999", "year-1"])
@pytest.mark.parametrize("summarised", [False, True], ids=["events", "summary"])
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "after-a-send"])
def test_pages_render_events_at_the_ends_of_the_calendar(
    admin, settings, zone, when, summarised, alone
):
    """Stored directly (whether the API accepts such a timestamp is its own concern)."""
    settings.TIME_ZONE = zone
    ingest(
        call("Email Sent", "x-1", at(1), "d-x", "p-x", campaign_id=7),
        call("Email Opened", "x-2", at(1, 5), "d-x", "p-x", campaign_id=7),
    )
    Event.objects.filter(message_id="x-2").update(timestamp=when)
    if alone:
        Event.objects.filter(message_id="x-1").update(timestamp=when)
    if summarised:
        summaries_catch_up()
    urls = [reverse("dashboard:delivery", args=["d-x"]), "/", reverse("dashboard:campaigns")]
    if summarised:  # the lists and the campaign read the summaries
        urls += [
            reverse("dashboard:person", args=["p-x"]),
            reverse("dashboard:deliveries") + "?q=p-x",
            reverse("dashboard:campaign", args=["campaign", 7]),
        ]
    for url in urls:
        response = admin.get(url)
        assert response.status_code == 200, url
    delivery = admin.get(reverse("dashboard:delivery", args=["d-x"]))
    # The stored JSON still shows the timestamp as it was sent.
    assert len(delivery.context["events"]) == 2
    assert delivery.context["page"].charts["timeline"].figure["data"]


def test_moments_are_held_two_days_inside_python_s_range():
    from dashboard.moments import shown_moment

    assert shown_moment(EXTREMES[0]) == datetime(9999, 12, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert shown_moment(EXTREMES[1]) == datetime(1, 1, 3, tzinfo=UTC)
    ordinary = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert shown_moment(ordinary) is ordinary
    assert shown_moment(date(9999, 12, 31)) == date(9999, 12, 31)  # only datetimes move


def test_tomorrow_is_counted_from_now_not_from_the_end_of_the_hour(settings):
    """At 23:30 the presets end at midnight, but the day after tomorrow is still refused."""
    settings.TIME_ZONE = "UTC"
    from django.http import QueryDict

    from dashboard.filters import filters_from_query

    now = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    late = filters_from_query(QueryDict("period=custom&from=2026-12-01&to=2026-12-05"), now=now)
    assert late.period == "30d" and late.notices
    edge = filters_from_query(QueryDict("period=custom&from=2026-12-01&to=2026-12-04"), now=now)
    assert edge.period == "custom" and not edge.notices
