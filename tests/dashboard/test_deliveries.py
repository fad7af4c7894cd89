"""The deliveries list (search and funnel drill-down), one delivery's timeline, and one
person's deliveries, against hand-computed expectations.

Events go in through the ingest service and the rollup runs as its task does; times are
relative to now so the default period (the last 30 days) holds them.

One module on purpose (over 400 lines): the deliveries list and one delivery's page are checked on
the same fixtures.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.models import Delivery
from metrics_source.ingest.service import events_ingest_calls
from metrics_source.models import Event
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db

# A base64 delivery id, with each character a URL treats specially.
ODD_ID = "RKK4/AwU+AAYo=="
NOW = timezone.now().replace(microsecond=0)
SECRET = "whsec_c2VjcmV0LXNob3VsZC1uZXZlci1zaG93"


def at(days: float = 0, minutes: float = 0) -> str:
    return (NOW - timedelta(days=days) + timedelta(minutes=minutes)).isoformat()


def call(name: str, message_id: str, when: str, delivery: str, user: str, **props) -> dict:
    properties = {"delivery_id": delivery, **props}
    return track_call(
        name, message_id=message_id, user_id=user, timestamp=when, properties=properties
    )


def ingest(*calls: dict) -> None:
    result = events_ingest_calls(source=None, calls=list(calls))
    assert not result.rejected


@pytest.fixture
def deliveries(db):
    """Five deliveries (worked out by hand):

    ODD_ID  email, campaign 7, person p-1, ann@: sent, delivered, opened (twice: the same
            message id again is one event), clicked (arrives before the rest) -> clicked
    d-2     email, campaign 7, person p-1, ann@: sent, bounced                 -> bounced
    d-3     sms, broadcast 5, person p-2: sent, delivered                       -> delivered
    d-old   email, campaign 7, person p-1, 40 days ago: sent, opened (outside 30 days)
    d-mach  email, campaign 8, person p-3: sent, delivered, a prefetched open   -> opened
    """
    d1 = {"campaign_id": 7, "recipient": "ann@example.com", "subject": "Hello"}
    ingest(call("Email Link Clicked", "m1-click", at(1, 12), ODD_ID, "p-1", **d1))
    ingest(
        call("Email Sent", "m1-sent", at(1), ODD_ID, "p-1", **d1),
        call("Email Delivered", "m1-delivered", at(1, 1), ODD_ID, "p-1", **d1),
        call("Email Opened", "m1-opened", at(1, 10), ODD_ID, "p-1", **d1),
    )
    ingest(call("Email Opened", "m1-opened", at(1, 10), ODD_ID, "p-1", **d1))  # duplicate
    d2 = {"campaign_id": 7, "recipient": "ann@example.com"}
    ingest(
        call("Email Sent", "m2-sent", at(2), "d-2", "p-1", **d2),
        call("Email Bounced", "m2-bounced", at(2, 1), "d-2", "p-1", **d2),
    )
    d3 = {"broadcast_id": 5, "recipient": "+15550001"}
    ingest(
        call("SMS Sent", "m3-sent", at(3), "d-3", "p-2", **d3),
        call("SMS Delivered", "m3-delivered", at(3, 1), "d-3", "p-2", **d3),
    )
    d4 = {"campaign_id": 7, "recipient": "ann.old@example.com"}
    ingest(
        call("Email Sent", "m4-sent", at(40), "d-old", "p-1", **d4),
        call("Email Opened", "m4-opened", at(40, 5), "d-old", "p-1", **d4),
    )
    d5 = {"campaign_id": 8, "recipient": "bob@example.com"}
    ingest(
        call("Email Sent", "m5-sent", at(0.5), "d-mach", "p-3", **d5),
        call("Email Delivered", "m5-delivered", at(0.5, 1), "d-mach", "p-3", **d5),
        call("Email Opened", "m5-opened", at(0.5, 2), "d-mach", "p-3", prefetched=True, **d5),
    )
    summaries_catch_up()


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def listed(response) -> list[str]:
    """Delivery ids in the result table, in order."""
    return [row["delivery_id"] for row in response.context["rows"]]


def figure(response, name: str) -> dict:
    match = re.search(
        rf'<script id="figure-{name}" type="application/json">(.*?)</script>',
        response.content.decode(),
        flags=re.S,
    )
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


def csv_rows(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


# --- the deliveries list ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ODD_ID, [ODD_ID]),
        ("p-1", [ODD_ID, "d-2", "d-old"]),  # every delivery of the person, newest first
        ("ann@example.com", [ODD_ID, "d-2"]),
        ("  d-3 ", ["d-3"]),  # surrounding spaces are no part of an id
        ("ann", []),  # an email matches whole, never by prefix
        ("ANN@Example.COM", [ODD_ID, "d-2"]),  # in any case
        (ODD_ID[:5], [ODD_ID]),  # a delivery id from its first characters
        ("d-ol", ["d-old"]),
        ("p-", []),  # under four characters: the whole id only
        ("d-_ld", []),  # LIKE's wildcards are literal characters
    ],
)
def test_search_by_delivery_person_or_email(admin, deliveries, text, expected):
    response = admin.get(reverse("dashboard:deliveries"), {"q": text})
    assert response.status_code == 200
    assert listed(response) == expected
    if not expected:
        assert b"Nothing found" in response.content


def test_result_rows_link_to_delivery_person_and_campaign(admin, deliveries):
    response = admin.get(reverse("dashboard:deliveries"), {"q": ODD_ID})
    html = response.content.decode()
    delivery_url = reverse("dashboard:delivery", args=[ODD_ID])
    assert delivery_url == "/deliveries/RKK4/AwU+AAYo==/"
    assert f'href="{delivery_url}"' in html
    assert f'href="{reverse("dashboard:person", args=["p-1"])}"' in html
    assert f'href="{reverse("dashboard:campaign", args=["campaign", 7])}"' in html
    assert '<span class="pill ok">clicked</span>' in html


@pytest.mark.parametrize(
    ("params", "expected", "caption"),
    [
        (
            {"channel": "email", "reached": "opened"},
            ["d-mach", ODD_ID],  # not d-old: created before the period
            "Email deliveries sent in the last 30 days that were opened",
        ),
        ({"reached": "human_opened"}, [ODD_ID], "opened by a person"),
        ({"reached": "clicked"}, [ODD_ID], "Deliveries sent in the last 30 days that were clicked"),
        ({"reached": "bounced"}, ["d-2"], "that bounced"),
        ({"reached": "delivered"}, ["d-mach", ODD_ID, "d-3"], "that were delivered"),
        ({"reached": "sent", "channel": "sms"}, ["d-3"], "SMS deliveries sent"),
        ({"reached": "opened", "parent": "campaign:8"}, ["d-mach"], "of Campaign 8"),
        ({"reached": "opened", "period": "90d"}, ["d-mach", ODD_ID, "d-old"], "last 90 days"),
    ],
)
def test_funnel_step_lists_exactly_its_deliveries(admin, deliveries, params, expected, caption):
    response = admin.get(reverse("dashboard:deliveries"), params)
    assert response.status_code == 200
    assert listed(response) == expected
    assert caption in response.context["caption"]


def test_recent_deliveries_without_search_or_step(admin, deliveries):
    response = admin.get(reverse("dashboard:deliveries"))
    assert listed(response) == ["d-mach", ODD_ID, "d-2", "d-3"]
    assert b"from its first four characters on" in response.content
    statuses = [row["status"] for row in response.context["rows"]]
    assert statuses == ["opened", "clicked", "bounced", "delivered"]
    assert '<span class="pill bad">bounced</span>' in response.content.decode()


def test_filter_bar_keeps_search_and_step(admin, deliveries):
    response = admin.get(reverse("dashboard:deliveries"), {"reached": "opened", "q": "p-1"})
    html = response.content.decode()
    start = html.index('<form class="filters"')
    form = html[start : html.index("</form>", start)]
    assert '<input type="hidden" name="q" value="p-1">' in form
    assert '<input type="hidden" name="reached" value="opened">' in form


@pytest.mark.parametrize(
    ("params", "notice"),
    [
        ({"reached": "nonsense"}, "Unknown step"),
        ({"reached": "created"}, "Unknown step"),  # a column, but no metric
        ({"reached": "opened'; DROP TABLE x;--"}, "Unknown step"),
        ({"period": "5y", "reached": "opened"}, "Unknown period"),
        ({"channel": "fax"}, "Unknown channel"),
    ],
)
def test_invalid_parameters_give_a_notice(admin, deliveries, params, notice):
    response = admin.get(reverse("dashboard:deliveries"), params)
    assert response.status_code == 200
    assert notice in response.content.decode()


def test_deliveries_csv(admin, deliveries):
    response = admin.get(
        reverse("dashboard:deliveries"),
        {"channel": "email", "reached": "opened", "download": "deliveries"},
    )
    rows = csv_rows(response)
    assert [row["delivery_id"] for row in rows] == ["d-mach", ODD_ID]
    assert rows[1]["status"] == "clicked"
    assert rows[1]["parent_kind"] == "campaign" and rows[1]["parent_id"] == "7"
    assert rows[0]["human_opened_at"] == ""  # the prefetched open is a machine one
    assert admin.get(reverse("dashboard:deliveries"), {"download": "nope"}).status_code == 404


# --- one delivery ---------------------------------------------------------------------------


def test_delivery_timeline_in_time_order_with_facts(admin, deliveries):
    response = admin.get(reverse("dashboard:delivery", args=[ODD_ID]))
    assert response.status_code == 200
    events = response.context["events"]
    # Four events (the repeated open is stored once), in time order though the click came first.
    assert [e["metric"] for e in events] == ["sent", "delivered", "opened", "clicked"]
    assert [e["since"] for e in events] == [
        "at send",
        "1 min after sent",
        "10 min after sent",
        "12 min after sent",
    ]
    timeline = figure(response, "timeline")["data"][0]
    assert timeline["y"] == ["Sent", "Delivered", "Opened", "Clicked"]
    assert timeline["text"][3] == "12 min after sent"
    facts = response.context["facts"]
    assert facts["recipient"] == "ann@example.com"
    assert facts["subject"] == "Hello"
    assert facts["events"] == 4
    assert facts["parent_url"] == reverse("dashboard:campaign", args=["campaign", 7])
    assert facts["person_url"] == "/people/p-1/"
    firsts = {item["metric"]: item["since"] for item in response.context["first_times"]}
    assert firsts == {
        "sent": "at send",
        "delivered": "1 min after sent",
        "opened": "10 min after sent",
        "human_opened": "10 min after sent",
        "clicked": "12 min after sent",
        "human_clicked": "12 min after sent",
    }
    html = response.content.decode()
    assert html.count("<details><summary>JSON</summary>") == 4
    assert "&quot;messageId&quot;: &quot;m1-click&quot;" in html
    assert "Add a destination" in html
    assert f'href="{reverse("admin:metrics_source_destination_add")}"' in html


def test_delivery_with_a_machine_open(admin, deliveries):
    response = admin.get(reverse("dashboard:delivery", args=["d-mach"]))
    opened = response.context["events"][2]
    assert opened["metric"] == "opened" and opened["machine"]
    assert figure(response, "timeline")["data"][0]["marker"]["symbol"][2] == "circle-open"
    assert "human_opened" not in {item["metric"] for item in response.context["first_times"]}


def test_delivery_events_csv(admin, deliveries):
    response = admin.get(reverse("dashboard:delivery", args=[ODD_ID]), {"download": "events"})
    rows = csv_rows(response)
    expected = ["m1-sent", "m1-delivered", "m1-opened", "m1-click"]
    assert [row["message_id"] for row in rows] == expected


def test_unknown_delivery_is_404(admin, deliveries):
    assert admin.get(reverse("dashboard:delivery", args=["nope"])).status_code == 404
    assert admin.get(reverse("dashboard:delivery", args=["RKK4/AwU"])).status_code == 404


def test_delivery_before_the_rollup_falls_back_to_its_events(admin, db):
    ingest(
        call("Push Delivered", "f-2", at(0, 3), "d-fresh", "p-9", campaign_id=3),
        call("Push Sent", "f-1", at(0), "d-fresh", "p-9", campaign_id=3),
    )  # no summaries_catch_up: the rollup has not run yet
    response = admin.get(reverse("dashboard:delivery", args=["d-fresh"]))
    assert response.status_code == 200
    assert "not summarised yet" in response.content.decode()
    assert [e["metric"] for e in response.context["events"]] == ["sent", "delivered"]
    facts = response.context["facts"]
    assert facts["channel"] == "Push"
    assert facts["person_id"] == "p-9"
    assert facts["parent_url"] == reverse("dashboard:campaign", args=["campaign", 3])
    assert response.context["status"]["metric"] == "delivered"


def test_event_properties_are_escaped(admin, db):
    evil = "<script>alert('x')</script>"
    ingest(call("Email Sent", "x-1", at(0), "d-xss", evil, subject=evil, recipient=evil))
    summaries_catch_up()
    for url in (
        reverse("dashboard:delivery", args=["d-xss"]),
        reverse("dashboard:deliveries") + "?q=d-xss",
        reverse("dashboard:person", args=[evil]),
    ):
        response = admin.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert(" in html, url


@pytest.fixture
def destinations(settings, deliveries):
    """Two webhook destinations that backfill every stored event, with the ledger as the
    forwarding services leave it: for ODD_ID's events, sent delivered (1 attempt), delivered
    failed twice, opened dead; clicked still pending; the second destination has none."""
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True
    hook = destination_create(
        name="Warehouse hook",
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        secret=SECRET,
        backfill_from=datetime(2020, 1, 1, tzinfo=UTC),
    )
    destination_create(name="Another", kind="webhook", url="http://127.0.0.1:9/other")
    assert destination_fanout(destination_id=hook.pk) == Event.objects.count()
    ledger = Delivery.objects.filter(destination=hook)
    now = timezone.now()
    ledger.filter(event__message_id="m1-sent").update(
        status="delivered", attempts=1, delivered_at=now
    )
    ledger.filter(event__message_id="m1-delivered").update(
        status="failed", attempts=2, last_error="HTTP 503 from receiver <b>busy</b>"
    )
    ledger.filter(event__message_id="m1-opened").update(
        status="dead", attempts=5, last_error="HTTP 410 gone"
    )
    return hook


def test_forwarding_status_per_event_and_destination(admin, destinations):
    response = admin.get(reverse("dashboard:delivery", args=[ODD_ID]))
    forwarding = response.context["forwarding"]
    assert [d["name"] for d in forwarding["destinations"]] == ["Another", "Warehouse hook"]
    statuses = [
        [cell["status"] if cell else None for cell in row["cells"]] for row in forwarding["rows"]
    ]
    assert statuses == [
        [None, "delivered"],
        [None, "failed"],
        [None, "dead"],
        [None, "pending"],
    ]
    html = response.content.decode()
    assert '<span class="pill dead">dead</span>' in html
    assert '<span class="muted">1 attempt</span>' in html
    assert '<span class="muted">5 attempts</span>' in html
    assert "HTTP 503 from receiver &lt;b&gt;busy&lt;/b&gt;" in html
    assert "not queued" in html
    assert SECRET not in html
    assert "c2VjcmV0" not in html


# --- one person -------------------------------------------------------------------------------


def test_person_page_lists_every_delivery_newest_first(admin, deliveries):
    response = admin.get(reverse("dashboard:person", args=["p-1"]))
    assert response.status_code == 200
    assert listed(response) == [ODD_ID, "d-2", "d-old"]
    tiles = {tile.label: (tile.value, tile.detail) for tile in response.context["tiles"]}
    assert tiles == {
        "Deliveries": ("3", "1 channel(s)"),
        "Email": ("3", "2 opened, 1 clicked, 1 failed"),
    }
    assert response.context["recipients"] == ["ann.old@example.com", "ann@example.com"]
    activity = figure(response, "activity")["data"]
    assert [trace["name"] for trace in activity] == ["Email"]
    assert sum(activity[0]["y"]) == 3
    assert f'href="{reverse("dashboard:delivery", args=[ODD_ID])}"' in response.content.decode()


def test_person_csv(admin, deliveries):
    response = admin.get(reverse("dashboard:person", args=["p-1"]), {"download": "channels"})
    assert csv_rows(response) == [
        {
            "channel": "email",
            "deliveries": "3",
            "delivered": "1",
            "opened": "2",
            "clicked": "1",
            "converted": "0",
            "failed": "1",
        }
    ]


def test_unknown_person_shows_an_empty_state(admin, deliveries):
    response = admin.get(reverse("dashboard:person", args=["nobody"]))
    assert response.status_code == 200
    assert b"No deliveries for this person" in response.content


# --- every page -----------------------------------------------------------------------------


PAGES = [
    reverse("dashboard:deliveries"),
    reverse("dashboard:deliveries") + "?q=p-1",
    reverse("dashboard:deliveries") + "?reached=opened&channel=email",
    reverse("dashboard:delivery", args=[ODD_ID]),
    reverse("dashboard:person", args=["p-1"]),
]


@pytest.mark.parametrize("url", PAGES)
def test_login_required(client, deliveries, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url", PAGES)
def test_content_security_policy(admin, deliveries, url):
    response = admin.get(url)
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in response.content.decode()  # no inline scripts


# Per page: session and user (2), the idle session's renewal (3: savepoint, update,
# release), the filter bar's parents and sources (2), the summaries' backlog (1), and then
#   list: the parents' labels, the list's total and one page of it (3; a search 2)
#   delivery: summary, events, parents' labels, destinations, ledger (5; plus the source
#   name when the events came through a source)
#   person: totals, deliveries, parents' labels, the audit log's entry for the view (4)
@pytest.mark.parametrize(
    ("url", "queries"),
    [
        (PAGES[0], 11),
        (PAGES[1], 10),  # a search: no total, no pages
        (PAGES[2], 11),
        (PAGES[3], 13),
        (PAGES[4], 12),
    ],
)
def test_pinned_number_of_queries(admin, destinations, django_assert_num_queries, url, queries):
    with django_assert_num_queries(queries):
        assert admin.get(url).status_code == 200


@pytest.mark.parametrize(
    ("moments", "window"),
    [
        (["2026-11-27T21:38:07.971"], ("2026-11-27T21:37:37.971", "2026-11-27T21:38:37.971")),
        (  # a burst of a few seconds, centred
            ["2026-11-27T21:38:00", "2026-11-27T21:38:10"],
            ("2026-11-27T21:37:35.000", "2026-11-27T21:38:35.000"),
        ),
        (["2026-11-27T21:38:00", "2026-11-27T23:38:00"], None),  # hours apart: plotly's range
    ],
)
def test_a_timeline_spans_at_least_a_minute(moments, window):
    from dashboard.charts.timeline import delivery_timeline_figure

    events = [
        {"at": at, "metric": "sent", "event": "Email Sent", "since": "at send", "machine": False}
        for at in moments
    ]
    axis = delivery_timeline_figure(events)["layout"]["xaxis"]
    assert tuple(axis["range"]) == window if window else "range" not in axis
