"""The rollup: delivery summaries and hourly counts, against hand-computed expectations.

Events go in through the ingest service (as the API stores them) and the rollup runs as the
Celery task runs it; the expectations are worked out by hand from the events of each test.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, connections

from metrics_source.ingest.service import events_ingest_calls
from metrics_source.models import (
    DeliverySummary,
    Event,
    FailureCount,
    LinkCount,
    MessageParent,
    MetricCount,
    SummaryQueue,
)
from metrics_source.summaries.metrics import FIRST_TIMES, Basis
from metrics_source.summaries.rollup import summaries_catch_up
from tests.payloads import track_call

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0, day: int = 20) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def hour(h: int, day: int = 20) -> datetime:
    return datetime(2026, 11, day, h, tzinfo=UTC)


def event(name: str, message_id: str, when: str, delivery: str | None = "d1", **props) -> dict:
    properties = {"campaign_id": 7, **props}
    if delivery is not None:
        properties["delivery_id"] = delivery
    return track_call(name, message_id=message_id, timestamp=when, properties=properties)


def ingest(*calls: dict) -> None:
    result = events_ingest_calls(source=None, calls=list(calls))
    assert not result.rejected


def counts(basis: int = Basis.EVENT) -> dict[tuple[datetime, str], tuple[int, int, int, int]]:
    """(bucket, metric) -> (events, machine_events, deliveries, human_deliveries), non-zero."""
    rows = MetricCount.objects.filter(basis=basis).values_list(
        "bucket", "metric", "events", "machine_events", "deliveries", "human_deliveries"
    )
    out: dict[tuple[datetime, str], tuple[int, int, int, int]] = {}
    for bucket, metric, *values in rows:
        key = (bucket, metric)
        previous = out.get(key, (0, 0, 0, 0))
        out[key] = tuple(a + b for a, b in zip(previous, values, strict=True))  # type: ignore[assignment]
    return {key: value for key, value in out.items() if any(value)}


def test_model_has_a_column_for_every_first_time() -> None:
    columns = {f.name for f in DeliverySummary._meta.get_fields()}
    assert {ft.column for ft in FIRST_TIMES} <= columns
    assert {c for c in columns if c.endswith("_at")} - {"created_at", "last_event_at"} == {
        ft.column for ft in FIRST_TIMES
    }


def test_one_delivery_in_order() -> None:
    ingest(
        event("Email Sent", "m1", at(10), recipient="ann@example.com", subject="Hello"),
        event("Email Delivered", "m2", at(10, 1)),
        event("Email Opened", "m3", at(11, 30), prefetched=True),
        event("Email Opened", "m4", at(12, 30)),
        event("Email Link Clicked", "m5", at(12, 40), href="https://example.com/a"),
    )
    assert summaries_catch_up().events == 5
    summary = DeliverySummary.objects.get()
    assert summary.delivery_id == "d1"
    assert (summary.parent_kind, summary.parent_id, summary.channel) == ("campaign", 7, "email")
    assert summary.recipient == "ann@example.com" and summary.subject == "Hello"
    assert summary.sent_at == hour(10) and summary.delivered_at == hour(10).replace(minute=1)
    assert summary.opened_at == hour(11).replace(minute=30)
    assert summary.human_opened_at == hour(12).replace(minute=30)
    assert summary.clicked_at == summary.human_clicked_at == hour(12).replace(minute=40)
    assert (summary.events, summary.opens, summary.machine_opens, summary.clicks) == (5, 2, 1, 1)
    assert summary.created_at == hour(10) and summary.last_event_at == hour(12).replace(minute=40)

    assert counts(Basis.EVENT) == {
        (hour(10), "sent"): (1, 0, 1, 0),
        (hour(10), "delivered"): (1, 0, 1, 0),
        (hour(11), "opened"): (1, 1, 1, 0),  # the first open was a machine's
        (hour(12), "opened"): (1, 0, 0, 1),  # the first human open, a second raw open
        (hour(12), "clicked"): (1, 0, 1, 1),
    }
    # Send-date cohort: everything in the hour it was sent; opens count every open.
    assert counts(Basis.SENT) == {
        (hour(10), "sent"): (1, 0, 1, 0),
        (hour(10), "delivered"): (1, 0, 1, 0),
        (hour(10), "opened"): (2, 1, 1, 1),
        (hour(10), "clicked"): (1, 0, 1, 1),
    }
    assert list(LinkCount.objects.values_list("link", "clicks")) == [("https://example.com/a", 1)]
    assert not SummaryQueue.objects.exists()


def test_out_of_order_across_rollups_moves_counts_to_the_right_hour() -> None:
    # An open arrives first, alone, and is summarised; then the open from an hour before it
    # and the sent event arrive.
    ingest(event("Email Opened", "o2", at(14)))
    summaries_catch_up()
    assert counts(Basis.EVENT) == {(hour(14), "opened"): (1, 0, 1, 1)}
    assert counts(Basis.SENT) == {(hour(14), "opened"): (1, 0, 1, 1)}  # no send yet: first seen

    ingest(event("Email Opened", "o1", at(13)), event("Email Sent", "s1", at(9)))
    summaries_catch_up()
    assert counts(Basis.EVENT) == {
        (hour(9), "sent"): (1, 0, 1, 0),
        (hour(13), "opened"): (1, 0, 1, 1),  # the unique open moved to the earlier hour
        (hour(14), "opened"): (1, 0, 0, 0),  # the raw event stays where it happened
    }
    assert counts(Basis.SENT) == {
        (hour(9), "sent"): (1, 0, 1, 0),
        (hour(9), "opened"): (2, 0, 1, 1),  # the cohort moved to the send hour
    }
    summary = DeliverySummary.objects.get()
    assert summary.opened_at == hour(13) and summary.created_at == hour(9)


def test_duplicates_count_once() -> None:
    sent = event("Email Sent", "s1", at(9))
    ingest(sent, sent, event("Email Delivered", "d", at(9, 5)))
    ingest(sent)  # a retry of the same request, later
    summaries_catch_up()
    ingest(event("Email Delivered", "d", at(9, 5)))
    summaries_catch_up()
    assert counts(Basis.EVENT) == {
        (hour(9), "sent"): (1, 0, 1, 0),
        (hour(9), "delivered"): (1, 0, 1, 0),
    }
    assert DeliverySummary.objects.get().events == 2


def test_deliveries_count_once_each_across_chunks() -> None:
    # Small chunks: one delivery's events are split across several transactions.
    calls = []
    for d in range(4):
        calls.append(event("Push Sent", f"s{d}", at(8, d), delivery=f"p{d}"))
        calls.append(event("Push Opened", f"o{d}a", at(9, d), delivery=f"p{d}"))
        calls.append(event("Push Opened", f"o{d}b", at(10, d), delivery=f"p{d}"))
    for call in calls:  # one queue row each
        ingest(call)
    result = summaries_catch_up(chunk_events=5)
    assert (result.events, result.chunks) == (12, 3)
    assert counts(Basis.EVENT) == {
        (hour(8), "sent"): (4, 0, 4, 0),
        (hour(9), "opened"): (4, 0, 4, 4),
        (hour(10), "opened"): (4, 0, 0, 0),
    }


def test_a_chunk_never_splits_what_one_statement_stored() -> None:
    # One request's events are one queue row: a chunk takes it whole, past its size.
    ingest(*(event("Push Sent", f"w{n}", at(8, n), delivery=f"w{n}") for n in range(12)))
    ingest(event("Push Sent", "x", at(9), delivery="x"))
    result = summaries_catch_up(chunk_events=5)
    assert (result.events, result.chunks) == (13, 2)
    assert counts(Basis.EVENT) == {
        (hour(8), "sent"): (12, 0, 12, 0),
        (hour(9), "sent"): (1, 0, 1, 0),
    }


def test_events_without_delivery_each_count_once() -> None:
    ingest(
        track_call("Subscribed", message_id="sub1", timestamp=at(7), properties={}),
        track_call("Subscribed", message_id="sub2", timestamp=at(7, 30), properties={}),
        track_call("Unsubscribed", message_id="uns", timestamp=at(8), properties={}),
    )
    summaries_catch_up()
    assert not DeliverySummary.objects.exists()
    assert counts(Basis.EVENT) == {
        (hour(7), "subscribed"): (2, 0, 2, 2),
        (hour(8), "unsubscribed"): (1, 0, 1, 1),
    }
    assert counts(Basis.SENT) == counts(Basis.EVENT)


def test_parent_learned_from_a_later_event_moves_the_counts() -> None:
    ingest(track_call("SMS Sent", message_id="s", timestamp=at(6), properties={"delivery_id": "x"}))
    summaries_catch_up()
    assert DeliverySummary.objects.get().parent_kind == ""
    ingest(event("SMS Delivered", "dl", at(6, 1), delivery="x", campaign_id=None, broadcast_id=3))
    summaries_catch_up()
    summary = DeliverySummary.objects.get()
    assert (summary.parent_kind, summary.parent_id) == ("broadcast", 3)
    by_parent = {
        (row.parent_kind, row.parent_id, row.metric): row.deliveries
        for row in MetricCount.objects.filter(basis=Basis.EVENT)
    }
    assert by_parent == {
        ("", 0, "sent"): 0,
        ("broadcast", 3, "sent"): 1,
        ("broadcast", 3, "delivered"): 1,
    }
    parent = MessageParent.objects.get()
    assert (parent.parent_kind, parent.parent_id, parent.channels) == ("broadcast", 3, ["sms"])


def test_failures_are_counted_by_message() -> None:
    ingest(
        event("Email Bounced", "b1", at(5), delivery="a", failure_message="550 no such user"),
        event("Email Bounced", "b2", at(5, 5), delivery="b", failure_message="550 no such user"),
        event("Email Bounced", "b3", at(5, 9), delivery="c", failure_message="552 mailbox full"),
        track_call(
            "Push Bounced",
            message_id="pb",
            timestamp=at(5),
            properties={
                "delivery_id": "p",
                "newsletter_id": 2,
                "recipients": [{"device_id": "1", "failure_message": "Unregistered token"}],
            },
        ),
    )
    summaries_catch_up()
    rows = set(FailureCount.objects.values_list("channel", "metric", "message", "events"))
    assert rows == {
        ("email", "bounced", "550 no such user", 2),
        ("email", "bounced", "552 mailbox full", 1),
        ("push", "bounced", "Unregistered token", 1),
    }
    assert DeliverySummary.objects.get(pk="p").failure_message == "Unregistered token"


def test_rollup_takes_events_that_commit_while_it_runs(transactional_db) -> None:
    """Concurrent ingest while rollups run: at the end every event is counted exactly once."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(40):
                ingest(
                    event("Email Sent", f"{prefix}s{i}", at(10), delivery=f"{prefix}{i}"),
                    event("Email Opened", f"{prefix}o{i}", at(11), delivery=f"{prefix}{i}"),
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def roller() -> None:
        try:
            while not stop.is_set():
                summaries_catch_up(chunk_events=7)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b", "c")]
    rollers = [threading.Thread(target=roller) for _ in range(2)]
    for thread in writers + rollers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in rollers:
        thread.join()
    assert not errors
    summaries_catch_up()
    assert Event.objects.count() == 240
    assert counts(Basis.EVENT) == {
        (hour(10), "sent"): (120, 0, 120, 0),
        (hour(11), "opened"): (120, 0, 120, 120),
    }
    assert DeliverySummary.objects.count() == 120
    assert not SummaryQueue.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metric_count WHERE deliveries < 0 OR events < 0")
        assert cursor.fetchone()[0] == 0


def test_a_busy_rollup_makes_the_other_return_at_once(transactional_db) -> None:
    ingest(event("Email Sent", "s", at(4)))
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x53554D4D])
            result = summaries_catch_up()
            assert not result.ran and result.events == 0
            cursor.execute("COMMIT")
    finally:
        holder.close()
    assert summaries_catch_up().events == 1


def test_rebuild_gives_the_same_summaries() -> None:
    from django.core.management import call_command

    ingest(
        event("Email Opened", "o", at(14)),
        event("Email Sent", "s", at(9)),
        event("Email Bounced", "b", at(9, 1), delivery="z", failure_message="550 gone"),
    )
    summaries_catch_up()
    before = (counts(Basis.EVENT), counts(Basis.SENT), list(FailureCount.objects.values()))
    call_command("summaries_rebuild", stdout=io.StringIO())
    after = (counts(Basis.EVENT), counts(Basis.SENT), list(FailureCount.objects.values()))
    assert before[:2] == after[:2]
    assert [(f["message"], f["events"]) for f in before[2]] == [
        (f["message"], f["events"]) for f in after[2]
    ]
    assert DeliverySummary.objects.count() == 2


def test_action_counts_follow_the_delivery_action() -> None:
    from metrics_source.models import ActionCount

    # The sent event names no action; the delivered one (a later chunk) does.
    ingest(event("Email Sent", "s", at(8), delivery="a1"))
    summaries_catch_up()
    ingest(event("Email Delivered", "d", at(8, 1), delivery="a1", action_id=55))
    ingest(event("Email Sent", "s2", at(9), delivery="a2", action_id=56))
    summaries_catch_up()
    rows = {
        (row.action_id, row.metric): row.deliveries
        for row in ActionCount.objects.filter(basis=Basis.EVENT)
        if row.deliveries
    }
    assert rows == {(55, "sent"): 1, (55, "delivered"): 1, (56, "sent"): 1}
