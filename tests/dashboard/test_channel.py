"""The channel list and one channel's page, against hand-computed expectations.

Events go in through the ingest service and the rollup runs as the worker runs it; each
expectation below is worked out by hand from the events of ``ingest_sample``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from metrics_source.ingest.service import events_ingest_calls
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db

# 01:00 UTC two days ago: inside every preset period but 24 h, and early enough in its day
# that all the sample's events (81 minutes of them) fall on that one day whatever the time of
# the run (two days ago at 23:00 would split the daily series over two days).
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(hour=1, minute=0, second=0, microsecond=0)


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def event(name: str, message_id: str, minutes: int, delivery: str, **props) -> dict:
    properties = {"delivery_id": delivery, "action_id": 96, **props}
    if not any(key.endswith("_id") and key not in ("delivery_id", "action_id") for key in props):
        properties["campaign_id"] = 7
    return track_call(name, message_id=message_id, timestamp=at(minutes), properties=properties)


def ingest(*calls: dict) -> None:
    result = events_ingest_calls(source=None, calls=list(calls))
    assert not result.rejected


def ingest_sample() -> None:
    """Campaign 7: three emails and an in-app message; broadcast 9: one SMS.

    email  d1 sent, delivered, opened twice, clicked; its sent event arrives twice
           d2 sent, bounced ("550 no such user")
           d3 delivered arrives before sent (out of order)
    in-app d4 sent, opened
    sms    d5 sent, delivered, clicked (broadcast 9)
    """
    ingest(
        event("Email Delivered", "m3b", 31, "d3"),  # before its sent event
        event("Email Sent", "m1a", 0, "d1", subject="Welcome aboard"),
        event("Email Sent", "m1a", 0, "d1", subject="Welcome aboard"),  # duplicate
        event("Email Delivered", "m1b", 1, "d1"),
        event("Email Opened", "m1c", 20, "d1"),
        event("Email Opened", "m1d", 80, "d1"),
        event("Email Link Clicked", "m1e", 81, "d1", href="https://example.com/a"),
        event("Email Sent", "m2a", 0, "d2"),
        event("Email Bounced", "m2b", 2, "d2", failure_message="550 no such user"),
        event("In-App Sent", "m4a", 5, "d4"),
        event("In-App Opened", "m4b", 65, "d4"),
    )
    summaries_catch_up()
    ingest(
        event("Email Sent", "m3a", 30, "d3"),
        event("Email Sent", "m1a", 0, "d1", subject="Welcome aboard"),  # again, later
        event("SMS Sent", "m5a", 10, "d5", broadcast_id=9),
        event("SMS Delivered", "m5b", 11, "d5", broadcast_id=9),
        event("SMS Link Clicked", "m5c", 40, "d5", broadcast_id=9, href="https://example.com/s"),
    )
    summaries_catch_up()


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def rows_by(rows: list[dict], key: str = "channel") -> dict:
    return {row[key]: row for row in rows}


def download(client, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


# --------------------------------------------------------------------------------------
# /channels/
# --------------------------------------------------------------------------------------


def test_channels_lists_every_channel_with_counts_and_rates(admin) -> None:
    ingest_sample()
    response = admin.get("/channels/")
    assert response.status_code == 200
    rows = rows_by(response.context["channel_rows"])
    assert set(rows) == {"email", "push", "sms", "in_app", "webhook", "slack", "subscription",
                         "whatsapp"}  # fmt: skip
    email = rows["email"]
    assert (email["sent"], email["delivered"]) == (3, 2)  # d1 once, d2, d3
    assert email["delivery_rate"] == pytest.approx(2 / 3)
    assert email["open_rate"] == pytest.approx(1 / 2)  # d1 opened twice: once
    assert email["click_rate"] == pytest.approx(1 / 2)
    assert email["click_to_open"] == pytest.approx(1.0)
    assert email["bounce_rate"] == pytest.approx(1 / 3)
    in_app = rows["in_app"]
    # No delivered step: "—" for delivered, and rates over sent.
    assert (in_app["sent"], in_app["delivered"], in_app["delivered_text"]) == (1, None, "—")
    assert in_app["open_rate"] == pytest.approx(1.0)
    assert in_app["delivery_rate"] is None
    sms = rows["sms"]
    assert sms["open_rate"] is None and sms["click_rate"] == pytest.approx(1.0)
    # Busiest first; each row links to its channel page keeping the filters.
    # (SMS and in-app tie on sent; SMS had more events.)
    order = [row["channel"] for row in response.context["channel_rows"]]
    assert order[:3] == ["email", "sms", "in_app"]
    assert rows["email"]["url"] == "/channels/email/"
    week = admin.get("/channels/?period=7d&channel=sms")
    assert rows_by(week.context["channel_rows"])["email"]["url"] == "/channels/email/?period=7d"
    content = response.content.decode()
    assert 'class="sortable"' in content
    assert "50.0%" in content and "66.7%" in content and "—" in content
    # The comparison chart carries the drill-down URLs.
    figure = response.context["page"].charts["channels"].figure
    assert figure["data"][0]["customdata"][0] == "/channels/email/"


def test_channels_csv_matches_the_table(admin) -> None:
    ingest_sample()
    table = download(admin, "/channels/?download=channels")
    header, *rows = table
    assert header[:4] == ["channel", "sent", "delivered", "events"]
    email = next(row for row in rows if row[0] == "email")
    assert email[1:3] == ["3", "2"]
    assert float(email[header.index("open_rate")]) == pytest.approx(0.5)
    in_app = next(row for row in rows if row[0] == "in_app")
    assert in_app[2] == "" and in_app[header.index("delivery_rate")] == ""
    assert admin.get("/channels/?download=nope").status_code == 404


def test_thousands_are_separated(admin) -> None:
    ingest(*(event("SMS Sent", f"bulk-{i}", i % 50, f"bulk-{i}") for i in range(1200)))
    summaries_catch_up()
    response = admin.get("/channels/")
    assert rows_by(response.context["channel_rows"])["sms"]["sent_text"] == "1,200"
    assert "1,200" in response.content.decode()
    assert "1,200" in admin.get("/channels/sms/").content.decode()


def test_channels_empty_state_explains_the_first_event(admin) -> None:
    response = admin.get("/channels/")
    assert response.status_code == 200
    assert "No events yet" in response.content.decode()


# --------------------------------------------------------------------------------------
# /channels/<channel>/
# --------------------------------------------------------------------------------------


def test_channel_page_funnel_tiles_and_failures(admin) -> None:
    ingest_sample()
    response = admin.get("/channels/email/?period=7d")
    assert response.status_code == 200
    context = response.context
    assert context["hide_channel_filter"] is True
    steps = {step["metric"]: step for step in context["funnel_steps"]}
    assert [s["metric"] for s in context["funnel_steps"]] == [
        "sent", "delivered", "opened", "clicked", "converted",
    ]  # fmt: skip
    assert [s["count"] for s in context["funnel_steps"]] == [3, 2, 1, 1, 0]
    assert steps["opened"]["url"] == "/deliveries/?period=7d&channel=email&reached=opened"
    tiles = {tile.label: tile for tile in context["tiles"]}
    assert tiles["Sent"].value == "3" and tiles["Delivered"].value == "2"
    assert tiles["Open rate"].value == "50.0%" and tiles["Bounce rate"].value == "33.3%"
    assert tiles["Sent"].change == "new in this period"
    failures = rows_by(context["failure_rows"], "metric")
    assert failures["bounced"]["deliveries"] == 1
    assert failures["bounced"]["rate"] == pytest.approx(1 / 3)
    assert [(m["metric"], m["message"], m["events"]) for m in context["failure_messages"]] == [
        ("bounced", "550 no such user", 1)
    ]
    # The channel filter is hidden: the URL names the channel.
    content = response.content.decode()
    assert 'name="channel"' not in content
    assert "550 no such user" in content
    # Rates over time: one day holds every event here.
    rates = response.context["page"].datasets["rates"]
    assert len(rates.rows) == 1
    row = dict(zip(rates.columns, rates.rows[0], strict=True))
    assert row["open_rate"] == pytest.approx(0.5) and row["bounce_rate"] == pytest.approx(1 / 3)
    failures_csv = download(admin, "/channels/email/?period=7d&download=failure_messages")
    assert failures_csv == [
        ["channel", "metric", "message", "smtp_class", "smtp_code", "events"],
        ["email", "bounced", "550 no such user", "hard", "550", "1"],
    ]
    funnel_csv = download(admin, "/channels/email/?period=7d&download=funnel")
    # Shares rounded to four places (a hundredth of a percent), not 0.6666666666666666.
    assert funnel_csv[1:3] == [["sent", "3", "1.0"], ["delivered", "2", "0.6667"]]


def test_channel_page_ignores_a_channel_in_the_query(admin) -> None:
    ingest_sample()
    response = admin.get("/channels/email/?channel=sms")
    assert [s["count"] for s in response.context["funnel_steps"]][:2] == [3, 2]


def test_channel_without_delivered_step_says_rates_use_sent(admin) -> None:
    ingest_sample()
    response = admin.get("/channels/in_app/")
    assert response.status_code == 200
    assert [s["metric"] for s in response.context["funnel_steps"]] == [
        "sent", "opened", "clicked", "converted",
    ]  # fmt: skip
    labels = [tile.label for tile in response.context["tiles"]]
    assert "Delivered" not in labels and "Delivery rate" not in labels
    assert "use sent as the denominator" in response.content.decode()


def test_subscription_channel_counts_changes(admin) -> None:
    ingest(
        track_call("Subscribed", message_id="s1", timestamp=at(0), properties={}),
        track_call("Unsubscribed", message_id="s2", timestamp=at(5), properties={}),
        track_call("Unsubscribed", message_id="s3", timestamp=at(6), properties={}),
    )
    summaries_catch_up()
    response = admin.get("/channels/subscription/")
    assert response.status_code == 200
    tiles = {tile.label: tile.value for tile in response.context["tiles"]}
    assert tiles == {"Subscribed": "1", "Unsubscribed": "2", "Preferences changed": "0"}


def test_channel_page_empty_period(admin) -> None:
    ingest_sample()
    response = admin.get("/channels/email/?period=custom&from=2020-01-01&to=2020-01-31")
    assert response.status_code == 200
    assert "No Email activity" in response.content.decode()


def test_unknown_channel_is_404(admin) -> None:
    assert admin.get("/channels/carrier-pigeon/").status_code == 404


def test_invalid_filters_fall_back_with_a_notice(admin) -> None:
    ingest_sample()
    for url in ("/channels/?period=forever&interval=minute", "/channels/email/?basis=x&source=z"):
        response = admin.get(url)
        assert response.status_code == 200
        assert 'class="notice"' in response.content.decode()


def test_login_required_and_csp(client, admin) -> None:
    anonymous = client.__class__()
    for url in ("/channels/", "/channels/email/"):
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        response = admin.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_pinned_number_of_queries(admin, django_assert_num_queries) -> None:
    ingest_sample()
    admin.get("/channels/")  # the session and user are loaded once per request anyway
    with django_assert_num_queries(QUERIES_CHANNELS):
        admin.get("/channels/")
    with django_assert_num_queries(QUERIES_CHANNEL):
        admin.get("/channels/email/")


# session + user + the idle session's renewal (savepoint, update, release) + page selectors +
# the filter bar's parents and sources + backlog.
QUERIES_CHANNELS = 9
QUERIES_CHANNEL = 11


def test_unsubscribes_are_opt_outs_not_failures(admin) -> None:
    ingest_sample()
    ingest(event("Email Unsubscribed", "m1u", 90, "d1"))
    summaries_catch_up()
    response = admin.get("/channels/email/?period=7d")
    groups = {row["metric"]: row["group"] for row in response.context["failure_rows"]}
    assert groups["bounced"] == "Failures" and groups["unsubscribed"] == "Opt-outs"
    assert [g for g in groups.values()] == sorted(groups.values())  # failures, then opt-outs
    unsubscribed = rows_by(response.context["failure_rows"], "metric")["unsubscribed"]
    assert unsubscribed["deliveries"] == 1 and unsubscribed["rate"] == pytest.approx(1 / 2)
    failures_chart = response.context["page"].charts["failures"].figure
    assert "Unsubscribed" not in {trace["name"] for trace in failures_chart["data"]}
    assert '<th colspan="4" scope="rowgroup">Opt-outs</th>' in response.content.decode()


def test_a_delivery_rate_near_100_percent_has_an_axis_of_its_own(admin) -> None:
    ingest_sample()
    figure = admin.get("/channels/email/?period=7d").context["page"].charts["rates"].figure
    axes = {trace["name"]: trace.get("yaxis", "y") for trace in figure["data"]}
    assert axes.pop("Delivery rate (right axis)") == "y2"
    assert set(axes.values()) == {"y"} and "Open rate" in axes
    assert figure["layout"]["yaxis2"]["side"] == "right"


def test_failure_messages_group_by_reason_with_their_smtp_class(admin) -> None:
    """The same bounce for different recipients is one row; hard (5.x.x) and soft (4.x.x)
    bounces are told apart. Counted by hand: two recipients unknown, one mailbox full, one
    push token (no SMTP status)."""
    ingest(
        event("Email Bounced", "f1", 10, "f-d1",
              failure_message="550 5.1.1 <ann.lee42@example.com>: Recipient address rejected"),
        event("Email Bounced", "f2", 11, "f-d2",
              failure_message="550 5.1.1 <bo.kim7@mail.example.org>: Recipient address rejected"),
        event("Email Bounced", "f3", 12, "f-d3",
              failure_message="452 4.2.2 Mailbox full (id 0f8fad5b-d9cb-469f-a165-70867728950e)"),
        event("Push Bounced", "f4", 13, "f-d4",
              failure_message="Unregistered device token 8c2e1f0b9a7d4c6e5f3a2b1c0d9e8f7a"),
    )  # fmt: skip
    summaries_catch_up()
    email = admin.get("/channels/email/?period=7d").context["failure_messages"]
    rows = {row["message"]: row for row in email}
    unknown = rows["550 5.1.1 <address>: Recipient address rejected"]
    assert int(unknown["events"]) == 2
    assert (unknown["smtp_class"], unknown["smtp_code"]) == ("hard", "5.1.1")
    full = rows["452 4.2.2 Mailbox full (id <id>)"]
    assert (full["smtp_class"], full["smtp_code"]) == ("soft", "4.2.2")
    push = admin.get("/channels/push/?period=7d").context["failure_messages"]
    assert [(row["message"], row["smtp_class"]) for row in push] == [
        ("Unregistered device token <id>", "")
    ]
