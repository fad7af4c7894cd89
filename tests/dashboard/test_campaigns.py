"""The campaign list and one campaign's page, against hand-computed expectations (the events
of ``tests.dashboard.test_channel.ingest_sample``: campaign 7 sends three emails and an
in-app message, broadcast 9 one SMS)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from metrics_source.summaries.rollup import summaries_catch_up
from tests.dashboard.test_channel import BASE, download, event, ingest, ingest_sample, rows_by

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def parent_rows(response) -> dict:
    return {(row["kind"], row["parent_id"]): row for row in response.context["parent_rows"]}


def test_campaigns_table_counts_and_rates(admin) -> None:
    ingest_sample()
    response = admin.get("/campaigns/")
    assert response.status_code == 200
    rows = parent_rows(response)
    assert set(rows) == {("campaign", 7), ("broadcast", 9)}
    campaign = rows[("campaign", 7)]
    assert campaign["name"] == "Welcome aboard"  # the first subject seen
    assert campaign["channels"] == ["email", "in_app"]
    assert (campaign["sent"], campaign["delivered"]) == (4, 2)
    # In-app has no delivered step: its sent stands in (2 delivered emails + 1 in-app).
    assert campaign["open_rate"] == pytest.approx(2 / 3)
    assert campaign["click_rate"] == pytest.approx(1 / 3)
    assert campaign["delivery_rate"] == pytest.approx(2 / 3)  # emails only
    # An in-app message cannot bounce: the bounce rate is over the three emails sent.
    assert campaign["bounce_rate"] == pytest.approx(1 / 3)
    assert campaign["url"] == "/campaigns/campaign/7/"
    broadcast = rows[("broadcast", 9)]
    assert broadcast["open_rate"] is None  # SMS cannot report opens
    assert broadcast["click_rate"] == pytest.approx(1.0)
    # Busiest first.
    assert [row["parent_id"] for row in response.context["parent_rows"]] == [7, 9]
    content = response.content.decode()
    assert 'class="sortable"' in content and "66.7%" in content and "—" in content
    figure = response.context["page"].charts["comparison"].figure
    assert figure["data"][0]["customdata"] == ["/campaigns/campaign/7/", "/campaigns/broadcast/9/"]
    assert figure["data"][0]["y"] == [4, 1]


def test_campaigns_links_keep_filters_but_not_the_parent(admin) -> None:
    ingest_sample()
    response = admin.get("/campaigns/?period=7d&parent=campaign:7")
    assert list(parent_rows(response)) == [("campaign", 7)]
    assert parent_rows(response)[("campaign", 7)]["url"] == "/campaigns/campaign/7/?period=7d"


def test_campaigns_filtered_by_channel(admin) -> None:
    ingest_sample()
    response = admin.get("/campaigns/?channel=sms")
    assert list(parent_rows(response)) == [("broadcast", 9)]


def test_campaigns_csv(admin) -> None:
    ingest_sample()
    header, *rows = download(admin, "/campaigns/?download=campaigns")
    assert header[:6] == ["kind", "id", "label", "channels", "sent", "delivered"]
    assert rows[0][:6] == ["campaign", "7", "Welcome aboard", "email in_app", "4", "2"]
    assert rows[0][header.index("open_rate")] == "0.6667"  # 2/3, to a hundredth of a percent
    assert rows[1][header.index("open_rate")] == ""


def test_campaigns_empty_states(admin) -> None:
    assert "No events yet" in admin.get("/campaigns/").content.decode()
    ingest_sample()
    response = admin.get("/campaigns/?period=custom&from=2020-01-01&to=2020-01-31")
    assert response.status_code == 200
    assert "Nothing sent" in response.content.decode()


def test_campaign_page(admin) -> None:
    ingest_sample()
    response = admin.get("/campaigns/campaign/7/?period=7d")
    assert response.status_code == 200
    context = response.context
    assert context["hide_parent_filter"] is True
    assert 'name="parent"' not in response.content.decode()
    tiles = {tile.label: tile.value for tile in context["tiles"]}
    assert tiles["Sent"] == "4" and tiles["Delivered"] == "2" and tiles["Open rate"] == "66.7%"
    funnel = {(c, s, int(n)) for c, s, n in download(
        admin, "/campaigns/campaign/7/?period=7d&download=funnel")[1:]}  # fmt: skip
    assert ("email", "sent", 3) in funnel and ("in_app", "opened", 1) in funnel
    assert ("email", "delivered", 2) in funnel and ("in_app", "sent", 1) in funnel
    # Drill-downs keep the parent.
    steps = context["page"].charts["funnel"].figure["data"][0]["customdata"]
    assert "/deliveries/?period=7d&channel=email&parent=campaign%3A7&reached=sent" in steps
    actions = rows_by(context["actions"], "channel")
    assert actions["email"]["action_id"] == 96
    assert actions["email"]["sent"] == 3
    assert (actions["email"]["opened"], actions["email"]["bounced"]) == (1, 1)
    assert actions["email"]["rates"]["open_rate"] == pytest.approx(1 / 2)
    assert actions["in_app"]["rates"]["open_rate"] == pytest.approx(1.0)
    assert [(link["link"], link["clicks"]) for link in context["links"]] == [
        ("https://example.com/a", 1)
    ]
    assert "550 no such user" in response.content.decode()
    assert download(admin, "/campaigns/campaign/7/?download=links") == [
        ["link", "clicks", "human_clicks", "machine_clicks"],
        ["https://example.com/a", "1", "1", "0"],
    ]
    series = download(admin, "/campaigns/campaign/7/?period=7d&download=series")
    opened = [row for row in series[1:] if row[1] == "opened"]
    # d1's two opens and d4's open: 2 unique deliveries, 3 events, on one day.
    assert [(row[2], row[3]) for row in opened] == [("2", "3")]
    # A human count exists for opens and clicks only: empty for the rest, never a false 0.
    assert series[0][4] == "human_deliveries"
    assert {row[1] for row in series[1:] if row[4] == ""} == {
        row[1] for row in series[1:] if row[1] not in ("opened", "clicked")
    }
    assert all(row[4] != "" for row in series[1:] if row[1] in ("opened", "clicked"))


def test_campaign_page_without_activity_in_the_period(admin) -> None:
    ingest_sample()
    response = admin.get("/campaigns/broadcast/9/?period=custom&from=2020-01-01&to=2020-01-02")
    assert response.status_code == 200
    assert "No activity" in response.content.decode()


def test_campaign_404s(admin) -> None:
    ingest_sample()
    assert admin.get("/campaigns/campaign/999/").status_code == 404
    assert admin.get("/campaigns/bogus/7/").status_code == 404
    assert admin.get("/campaigns/broadcast/7/").status_code == 404


def test_duplicates_and_late_events_do_not_double_count(admin) -> None:
    ingest_sample()
    before = parent_rows(admin.get("/campaigns/"))[("campaign", 7)]
    # The same events again, and an open from before the first one.
    ingest(event("Email Opened", "m1c", 20, "d1"), event("Email Opened", "m1z", 10, "d1"))
    summaries_catch_up()
    after = parent_rows(admin.get("/campaigns/"))[("campaign", 7)]
    assert (after["sent"], after["open_rate"]) == (before["sent"], before["open_rate"])


def test_invalid_filters_fall_back_with_a_notice(admin) -> None:
    ingest_sample()
    for url in ("/campaigns/?parent=nope&period=x", "/campaigns/campaign/7/?interval=century"):
        response = admin.get(url)
        assert response.status_code == 200
        assert 'class="notice"' in response.content.decode()


def test_login_required_and_csp(client, admin) -> None:
    anonymous = client.__class__()
    ingest_sample()
    for url in ("/campaigns/", "/campaigns/campaign/7/"):
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert "script-src 'self'" in admin.get(url)["Content-Security-Policy"]


def test_pinned_number_of_queries(admin, django_assert_num_queries) -> None:
    ingest_sample()
    admin.get("/campaigns/")
    with django_assert_num_queries(QUERIES_CAMPAIGNS):
        admin.get("/campaigns/")
    with django_assert_num_queries(QUERIES_CAMPAIGN):
        admin.get("/campaigns/campaign/7/")


# session + user + the idle session's renewal (savepoint, update, release) + the page's
# selectors + the filter bar's parents and sources + backlog. A campaign's page over its
# lifetime (its default) has no previous period to read, and reads its actions' names.
QUERIES_CAMPAIGNS = 10
QUERIES_CAMPAIGN = 14


# --- a message's own lifetime -----------------------------------------------------------------


def old_broadcast() -> None:
    """Broadcast 31: sent 40 days ago to three people (two opened, one clicked), the last open
    38 days ago; worked out by hand below."""
    day = -40 * 24 * 60
    ingest(
        event("Email Sent", "b31-s1", day, "b31-1", broadcast_id=31),
        event("Email Sent", "b31-s2", day, "b31-2", broadcast_id=31),
        event("Email Sent", "b31-s3", day + 1, "b31-3", broadcast_id=31),
        event("Email Delivered", "b31-d1", day + 2, "b31-1", broadcast_id=31),
        event("Email Delivered", "b31-d2", day + 2, "b31-2", broadcast_id=31),
        event("Email Delivered", "b31-d3", day + 2, "b31-3", broadcast_id=31),
        event("Email Opened", "b31-o1", day + 60, "b31-1", broadcast_id=31),
        event("Email Opened", "b31-o2", day + 2 * 24 * 60, "b31-2", broadcast_id=31),
        event("Email Link Clicked", "b31-c1", day + 61, "b31-1", broadcast_id=31),
    )
    summaries_catch_up()


def sql_unique(event_name: str) -> int:
    """Deliveries of broadcast 31 with this event, counted in SQL from the stored events."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT delivery_id) FROM metrics_source_event"
            " WHERE broadcast_id = 31 AND event = %s",
            [event_name],
        )
        return cursor.fetchone()[0]


def test_a_broadcast_page_defaults_to_its_lifetime_without_comparing_with_nothing(admin) -> None:
    old_broadcast()
    response = admin.get("/campaigns/broadcast/31/")
    assert response.status_code == 200
    filters = response.context["filters"]
    assert filters.lifetime and filters.period_choice == "lifetime"
    tiles = {tile.label: tile for tile in response.context["tiles"]}
    assert tiles["Sent"].value == str(sql_unique("Email Sent")) == "3"
    assert tiles["Delivered"].value == str(sql_unique("Email Delivered"))
    opened, delivered = sql_unique("Email Opened"), sql_unique("Email Delivered")
    assert tiles["Open rate"].value == f"{opened / delivered:.1%}" == "66.7%"
    # Nothing before its first event: no tile carries a change, and the page says why.
    assert all(tile.change == "" for tile in tiles.values())
    content = response.content.decode()
    assert "no earlier period to compare with" in content
    assert '<option value="lifetime" selected>Message lifetime</option>' in content
    # The funnel is full and its drill-downs cover the same days, written as dates.
    funnel = {(c, s, int(n)) for c, s, n in download(
        admin, "/campaigns/broadcast/31/?download=funnel")[1:]}  # fmt: skip
    assert ("email", "sent", 3) in funnel and ("email", "opened", 2) in funnel
    steps = response.context["page"].charts["funnel"].figure["data"][0]["customdata"]
    first = (BASE - timedelta(days=40)).date().isoformat()
    last = (BASE - timedelta(days=38)).date().isoformat()
    assert all("period=custom" in step and f"from={first}&to={last}" in step for step in steps), (
        steps
    )
    # The navigation does not carry this page's lifetime to the other pages.
    assert response.context["nav_query"] == ""


def test_a_chosen_period_compares_only_when_the_message_already_existed(admin) -> None:
    old_broadcast()
    # The last 90 days began before its first event: the 90 days before them hold nothing.
    response = admin.get("/campaigns/broadcast/31/?period=90d")
    tiles = {tile.label: tile for tile in response.context["tiles"]}
    assert tiles["Sent"].value == "3" and tiles["Sent"].change == ""
    assert "first event came after that period began" in response.content.decode()
    # The last 30 days hold none of it: said so, and never "Sent 0 (-100 %)".
    empty = admin.get("/campaigns/broadcast/31/?period=30d")
    assert "No activity in the last 30 days" in empty.content.decode()
    assert "-100" not in empty.content.decode()


def test_quiet_days_are_zero_and_the_day_going_on_is_drawn_as_partial(admin) -> None:
    old_broadcast()
    # Its lifetime is three days: opens on the first and the last, none between.
    figure = admin.get("/campaigns/broadcast/31/").context["page"].charts["series"].figure
    opened = next(trace for trace in figure["data"] if trace["name"] == "Opened")
    assert list(opened["y"]) == [1, 0, 1]
    assert not any("so far" in trace["name"] for trace in figure["data"])  # all of it is past

    ingest_sample()  # campaign 7, active now
    response = admin.get("/campaigns/campaign/7/?period=7d")
    figure = response.context["page"].charts["series"].figure
    today = response.context["filters"].unfinished_interval()
    assert today is not None
    sent = next(trace for trace in figure["data"] if trace["name"] == "Sent")
    so_far = next(trace for trace in figure["data"] if trace["name"] == "Sent (so far)")
    assert today.isoformat() not in sent["x"]
    assert list(so_far["x"])[-1] == today.isoformat() and so_far["line"]["dash"] == "dot"
    assert next(iter(so_far["x"])) == list(sent["x"])[-1]  # it continues the line


def test_links_are_counted_without_their_tracking_parameters(admin) -> None:
    """Clicks on one page with and without utm_* (or a click id) are one link; counted by
    hand below."""
    ingest_sample()
    base = "https://example.com/spring?ref=mail"
    ingest(
        event("Email Link Clicked", "l1", 90, "d1", href=f"{base}&utm_source=cio&utm_medium=email"),
        event("Email Link Clicked", "l2", 91, "d2", href=f"{base}&gclid=abc123#top"),
        event("Email Link Clicked", "l3", 92, "d3", href=base),
        event("Email Link Clicked", "l4", 93, "d3",
              href="https://example.com/only?utm_campaign=spring"),
    )  # fmt: skip
    summaries_catch_up()
    links = admin.get("/campaigns/campaign/7/?period=7d").context["links"]
    counted = {link["link"]: link["clicks"] for link in links}
    assert counted[base] == 2  # with utm_* and without
    assert counted[f"{base}#top"] == 1  # the fragment is part of where it goes
    assert counted["https://example.com/only"] == 1
    assert not any("utm_" in link or "gclid" in link for link in counted)
