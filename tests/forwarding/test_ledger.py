"""Fan-out, claims, retry policy, signing and SSRF checks against the real database; no
worker involved (the delivery tests run those)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.http import HttpResult
from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.ledger import deliveries_claim
from metrics_source.forwarding.models import AttemptOutcome, Delivery
from metrics_source.forwarding.retry import classify, parse_retry_after, retry_delay
from metrics_source.forwarding.signing import new_secret
from metrics_source.forwarding.ssrf import UrlRefused, check_url
from tests.forwarding_support import InvalidSignature, store_events, verify_standard_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


def webhook(**fields):
    return destination_create(
        name=fields.pop("name", "hook"), kind="webhook", url="http://127.0.0.1:9/x", **fields
    )


def ledger_message_ids(destination) -> list[str]:
    return sorted(
        Delivery.objects.filter(destination=destination).values_list("event__message_id", flat=True)
    )


def test_events_stored_before_a_destination_exists_are_not_fanned_out():
    old = store_events(3, prefix="old")
    destination = webhook()
    new = store_events(2, prefix="new")
    destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(destination) == sorted(new)
    assert not set(old) & set(ledger_message_ids(destination))


def test_backfill_sends_history_from_the_chosen_date():
    store_events(2, prefix="ancient", start=datetime(2020, 1, 1, tzinfo=UTC))
    recent = store_events(3, prefix="recent", start=datetime(2024, 1, 1, tzinfo=UTC))
    destination = webhook(backfill_from=datetime(2023, 1, 1, tzinfo=UTC))
    later = store_events(1, prefix="later")
    destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(destination) == sorted(recent + later)


def test_fanout_is_idempotent_and_rescans_until_the_floor_is_safe():
    destination = webhook()
    first = store_events(4)
    assert destination_fanout(destination_id=destination.pk) == 4
    assert destination_fanout(destination_id=destination.pk) == 0
    second = store_events(2)
    destination_fanout(destination_id=destination.pk)
    destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(destination) == sorted(first + second)
    destination.refresh_from_db()
    # Inside the test's transaction the snapshot's xmin never passes its own xid, so the floor
    # stays put: later runs rescan rather than skip (what keeps a late commit from being lost).
    assert destination.fanout_pending_floor is not None


def test_filters_select_channel_event_source_and_parent(make_source):
    wanted = make_source("wanted").source
    by_campaign = webhook(name="campaign", campaign_ids=[31], newsletter_ids=[77])
    by_event = webhook(name="event", event_names=["Email Opened"])
    by_source = destination_create(
        name="source", kind="webhook", url="http://127.0.0.1:9/x", sources=(wanted,)
    )
    by_channel = webhook(name="channel", channels=["push"])
    campaign_31 = store_events(2, prefix="c31")  # track_call's campaign_id is 31
    from metrics_source.ingest.service import events_ingest_calls
    from tests.payloads import track_call

    other = track_call("Email Delivered", message_id="c99", properties={"campaign_id": 99})
    opened = track_call("Email Opened", message_id="opened", properties={"campaign_id": 99})
    events_ingest_calls(source=None, calls=[other, opened])
    from_wanted = track_call("Email Delivered", message_id="wanted", properties={})
    events_ingest_calls(source=wanted, calls=[from_wanted])
    for destination in (by_campaign, by_event, by_source, by_channel):
        destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(by_campaign) == sorted(campaign_31)
    assert ledger_message_ids(by_event) == ["opened"]
    assert ledger_message_ids(by_source) == ["wanted"]
    assert ledger_message_ids(by_channel) == []


def test_claims_are_disjoint_and_expired_claims_come_back(transactional_db):
    destination = webhook()
    store_events(10)
    destination_fanout(destination_id=destination.pk)
    first = deliveries_claim(destination_id=destination.pk, worker="a", limit=6, seconds=60)
    second = deliveries_claim(destination_id=destination.pk, worker="b", limit=6, seconds=60)
    assert len(first) == 6 and len(second) == 4
    assert not {row.delivery_id for row in first} & {row.delivery_id for row in second}
    assert deliveries_claim(destination_id=destination.pk, worker="c", limit=6, seconds=60) == []
    # A dead worker's claim: move its expiry into the past, as time would.
    ids = [row.delivery_id for row in first]
    Delivery.objects.filter(pk__in=ids).update(
        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    again = deliveries_claim(destination_id=destination.pk, worker="c", limit=10, seconds=60)
    assert sorted(row.delivery_id for row in again) == sorted(ids)


def test_claim_query_uses_the_partial_index():
    destination = webhook()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM metrics_source_delivery WHERE destination_id = %s "
            "AND status IN ('pending', 'failed', 'in_flight') AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at, id LIMIT 10",
            [destination.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "delivery_due" in plan


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, AttemptOutcome.DELIVERED),
        (204, AttemptOutcome.DELIVERED),
        (500, AttemptOutcome.TRANSIENT),
        (503, AttemptOutcome.TRANSIENT),
        (408, AttemptOutcome.TRANSIENT),
        (429, AttemptOutcome.TRANSIENT),
        (400, AttemptOutcome.PERMANENT),
        (401, AttemptOutcome.PERMANENT),
        (410, AttemptOutcome.PERMANENT),
        (301, AttemptOutcome.PERMANENT),
        (None, AttemptOutcome.TRANSIENT),
    ],
)
def test_answers_are_classified(status, outcome):
    result = HttpResult(status, "", "7", "timed out" if status is None else "", 1.0)
    verdict = classify(result, now=datetime.now(UTC))
    assert verdict.outcome == outcome
    assert verdict.gone == (status == 410)


def test_retry_after_in_seconds_and_as_a_date():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:30 GMT", now=now) == 30
    assert parse_retry_after("soon", now=now) is None


def test_default_retry_schedule_is_at_least_a_day_and_a_half(settings):
    total = sum(settings.FORWARDING_RETRY_SCHEDULE)
    assert total * 0.8 >= 1.5 * 24 * 3600  # even with every jitter at its lowest
    attempts = len(settings.FORWARDING_RETRY_SCHEDULE) + 1
    assert retry_delay(attempts) is None
    assert retry_delay(1, retry_after=3600) >= 3600


def test_signature_verifies_with_a_spec_receiver_and_during_rotation():
    old, new = new_secret(), new_secret()
    destination = webhook(secret=new, previous_secret=old)
    request = KINDS["webhook"].request(destination, [b'{"a":1}'], ["msg-1"])
    assert request.headers["webhook-id"] == "msg-1"
    for secret in (old, new):
        verify_standard_webhook(secret, request.headers, request.body)
    with pytest.raises(InvalidSignature):
        verify_standard_webhook(new_secret(), request.headers, request.body)
    with pytest.raises(InvalidSignature):
        verify_standard_webhook(new, request.headers, request.body + b" ")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
    ],
)
def test_urls_inside_the_network_are_refused(settings, url):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(UrlRefused):
        check_url(url)
    with pytest.raises(UrlRefused):
        destination_create(name="x", kind="webhook", url=url)


def test_the_setting_allows_loopback_and_http(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True
    check_url("http://127.0.0.1:8080/hook")


def test_ingest_succeeds_with_the_broker_down(transactional_db, tmp_path):
    """The wake-up after ingest goes to a broker nobody listens on: the event is stored, the
    call returns (the nudge is published by a thread, which logs its failure), and the
    periodic sweep will fan it out."""
    import subprocess
    import sys

    from metrics_source.models import Event
    from tests.forwarding_support import ROOT, worker_database_url

    closed = socket_port()
    script = (
        "import django, logging, threading; django.setup()\n"
        "from metrics_source.ingest.service import events_ingest_calls\n"
        "from tests.payloads import track_call\n"
        "failed = threading.Event()\n"
        "class Seen(logging.Handler):\n"
        "    def emit(self, record): failed.set()\n"
        "logging.getLogger('metrics_source.runtime.wakeup').addHandler(Seen())\n"
        "r = events_ingest_calls(source=None, calls=[track_call('Email Opened', message_id='m')])\n"
        "print('stored', r.stored, 'before the broker failed:', not failed.is_set(), flush=True)\n"
        "print('broker failure logged:', failed.wait(60))\n"
    )
    import os

    env = os.environ | {
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": f"redis://127.0.0.1:{closed}/0",
        "DJANGO_SETTINGS_MODULE": "metrics_source.settings",
    }
    env.pop("CELERY_BROKER_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # The call returned before the publisher gave up on the broker: it never waited on it.
    assert "stored 1 before the broker failed: True" in result.stdout
    assert "broker failure logged: True" in result.stdout
    assert Event.objects.filter(message_id="m").exists()


def socket_port() -> int:
    """A loopback port with nothing listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_concurrent_claimers_never_share_a_row(transactional_db):
    """Two connections claiming at the same time, as two workers would (the destination lease
    is bypassed here on purpose: the claim alone must keep batches disjoint)."""
    import threading

    from django.db import connections

    destination = webhook()
    store_events(300)
    destination_fanout(destination_id=destination.pk)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        try:
            start.wait()
            while rows := deliveries_claim(
                destination_id=destination.pk, worker=name, limit=7, seconds=600
            ):
                claimed[name].extend(row.delivery_id for row in rows)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    both = claimed["a"] + claimed["b"]
    assert len(both) == len(set(both)) == 300
    assert claimed["a"] and claimed["b"]


def test_the_forwarded_json_is_the_stored_semantic_event():
    """What a destination receives is the event the mapping produced and ingest stored, key for
    key (plus receivedAt), whatever its shape: anonymous only, sentAt, unicode, nested, with
    the call's integrations (an empty object is left out, as the mapping does)."""
    import orjson

    from metrics_source.ingest.mapping import iso, track_event_from_call
    from metrics_source.ingest.service import events_ingest_calls
    from tests.payloads import track_call

    received_at = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    calls = [
        track_call("Email Opened", message_id="m1"),
        {
            **track_call("Push Opened", message_id="m2"),
            "userId": None,
            "anonymousId": "anon-ü",
            "sentAt": "2025-03-04T05:06:00.5Z",
            "properties": {"nested": {"list": [1, "two", None, 3.5]}, "emoji": "🎉"},
            "integrations": {"All": False, "Mixpanel": {"project": "p-1"}},
        },
        {**track_call("SMS Sent", message_id="m3"), "integrations": {}},
    ]
    destination = webhook()
    events_ingest_calls(source=None, calls=calls, received_at=received_at)
    destination_fanout(destination_id=destination.pk)
    claimed = deliveries_claim(destination_id=destination.pk, worker="t", limit=10, seconds=60)
    forwarded = {row.message_id: orjson.loads(row.body) for row in claimed}
    for call in calls:
        _, expected = track_event_from_call(call, received_at=received_at)
        expected["receivedAt"] = iso(received_at)
        assert forwarded[call["messageId"]] == expected
        assert list(forwarded[call["messageId"]])[:3] == ["type", "event", list(expected)[2]]


def test_an_event_committed_late_with_a_lower_id_is_still_fanned_out(transactional_db):
    """Ids are handed out before commit: an ingest transaction that stays open while later
    events commit and fan-out runs again and again must not have its event skipped."""
    import threading

    from django.db import connections, transaction

    destination = webhook()
    inserted, commit = threading.Event(), threading.Event()

    def slow_ingest() -> None:
        try:
            with transaction.atomic():
                store_events(1, prefix="late")
                inserted.set()
                commit.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_ingest)
    thread.start()
    assert inserted.wait(30)
    later = store_events(3, prefix="early-commit")
    for _ in range(3):
        destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(destination) == sorted(later)
    commit.set()
    thread.join(30)
    destination_fanout(destination_id=destination.pk)
    assert ledger_message_ids(destination) == sorted([*later, "late-00000"])
    # Once nothing is in flight the floor catches up, so old events are not rescanned forever.
    # "In flight" is cluster-wide (the snapshot's xmin): a transaction of another test process
    # on the same server holds the floor back until it ends, so fan out until it has.
    highest = max(
        Delivery.objects.filter(destination=destination).values_list("event_id", flat=True)
    )
    deadline = time.monotonic() + 60
    while True:
        destination_fanout(destination_id=destination.pk)
        destination.refresh_from_db()
        if destination.fanout_floor >= highest or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert destination.fanout_floor >= highest
