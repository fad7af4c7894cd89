"""The query-string filters: defaults, every fallback, and URLs that round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict
from django.test import override_settings

from dashboard.filters import filters_from_query

NOW = datetime(2026, 11, 27, 14, 25, tzinfo=UTC)


def parse(query: str):
    return filters_from_query(QueryDict(query), now=NOW)


def test_defaults_are_the_last_30_days_by_day_ending_at_the_next_full_hour() -> None:
    filters = parse("")
    assert filters.end == datetime(2026, 11, 27, 15, tzinfo=UTC)
    assert filters.start == filters.end - timedelta(days=30)
    assert (filters.period, filters.interval, filters.basis) == ("30d", "day", "event")
    assert filters.notices == () and filters.query() == ""


@pytest.mark.parametrize(
    ("query", "interval"), [("period=24h", "hour"), ("period=7d", "day"), ("period=90d", "week")]
)
def test_each_period_has_a_readable_default_interval(query: str, interval: str) -> None:
    assert parse(query).interval == interval


@override_settings(TIME_ZONE="Europe/Paris")
def test_custom_dates_are_whole_days_in_the_display_time_zone() -> None:
    filters = parse("period=custom&from=2026-11-01&to=2026-11-03")
    assert filters.start == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert filters.end == datetime(2026, 11, 3, 23, tzinfo=UTC)
    assert filters.query() == "?period=custom&from=2026-11-01&to=2026-11-03"
    assert filters.period_label == "2026-11-01 to 2026-11-03"
    previous = filters.previous()
    assert previous.end == filters.start and previous.start == filters.start - timedelta(days=3)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("period=custom&from=2026-11-05&to=2026-11-01", "custom dates"),
        ("period=custom&from=yesterday", "custom dates"),
        ("period=custom&from=2020-01-01&to=2026-01-01", "limited to 400 days"),
        ("period=1y", "Unknown period"),
        ("interval=minute", "Unknown interval"),
        ("period=90d&interval=hour", "Hourly points"),
        ("basis=delivered", "Unknown date basis"),
        ("channel=fax", "Unknown channel"),
        ("parent=campaign:abc", "Unknown campaign"),
        ("parent=cohort:1", "Unknown campaign"),
        ("parent=campaign:99999999999999999999999", "Unknown campaign"),
        ("source=-1", "Unknown source"),
    ],
)
def test_bad_values_fall_back_with_a_notice(query: str, fragment: str) -> None:
    filters = parse(query)
    assert len(filters.notices) == 1 and fragment in filters.notices[0]
    # What remains is valid and round-trips.
    assert parse(filters.query().lstrip("?")).notices == ()


def test_filters_round_trip_through_the_url() -> None:
    query = "period=7d&interval=hour&basis=sent&channel=email&parent=broadcast%3A12&source=3"
    filters = parse(query)
    assert (filters.parent_kind, filters.parent_id, filters.source_id) == ("broadcast", 12, 3)
    assert parse(filters.query().lstrip("?")) == filters
    assert filters.query(channel=None) == (
        "?period=7d&interval=hour&basis=sent&parent=broadcast%3A12&source=3"
    )
    # A preset drops custom dates.
    assert "from=" not in parse("period=custom&from=2026-11-01&to=2026-11-02").query(period="7d")
