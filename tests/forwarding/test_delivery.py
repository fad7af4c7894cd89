"""Forwarding end to end: Celery worker processes (prefork, beat embedded) on the run's Redis
and test database, delivering to real HTTP receivers on loopback."""

from __future__ import annotations

import itertools
import threading
import uuid

import orjson
import pytest
import redis
from django.conf import settings as django_settings

from metrics_source.forwarding.destinations import destination_create, destination_resume
from metrics_source.forwarding.models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Destination,
)
from metrics_source.forwarding.signing import new_secret
from tests.forwarding_support import (
    InvalidSignature,
    celery_worker,
    receiver,
    store_events,
    verify_standard_webhook,
    wait_for,
)
from tests.payloads import track_call

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def queue() -> str:
    return f"fwd-test-{uuid.uuid4().hex[:12]}"


def statuses(destination: Destination) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(destination=destination).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def all_delivered(destination: Destination, count: int):
    return lambda: statuses(destination) == {DeliveryStatus.DELIVERED: count}


def hook(url: str, **fields) -> Destination:
    return destination_create(
        name=fields.pop("name", f"hook-{uuid.uuid4().hex[:6]}"), kind="webhook", url=url, **fields
    )


def test_signed_webhooks_carry_the_stored_semantic_event(tmp_path, queue):
    secret = new_secret()

    def verify(received, index):
        try:
            verify_standard_webhook(secret, received.headers, received.body)
        except InvalidSignature as error:
            return 401, {}, str(error).encode()
        return 200, {}, b"ok"

    with receiver(verify) as target, celery_worker(tmp_path, queue):
        destination = hook(target.url + "/in", secret=secret)
        ids = store_events(5)
        wait_for(all_delivered(destination, 5), what="5 delivered")
    assert sorted(target.delivered_message_ids()) == sorted(ids)  # once each
    original = track_call("Email Delivered", message_id="x")
    for received in target.requests:
        assert received.status == 200
        event = orjson.loads(received.body)
        assert received.headers["webhook-id"] == event["messageId"]
        assert event["type"] == "track" and event["event"] == "Email Delivered"
        assert event["properties"] == original["properties"]
        assert event["context"] == original["context"]
        assert event["userId"] == original["userId"]
    attempts = DeliveryAttempt.objects.filter(destination=destination)
    assert attempts.count() == 5
    assert {a.outcome for a in attempts} == {AttemptOutcome.DELIVERED}


def test_three_failures_then_success_delivers_each_event_once_with_the_attempts(tmp_path, queue):
    def flaky(received, index):
        return (503, {}, b"down") if index < 3 else (200, {}, b"ok")

    with receiver(flaky) as target, celery_worker(tmp_path, queue):
        destination = hook(target.url, batch_size=5)
        ids = store_events(5)  # one transaction: one fan-out, one batch
        wait_for(all_delivered(destination, 5), what="5 delivered")
    assert sorted(target.delivered_message_ids()) == sorted(ids)
    ledger = Delivery.objects.filter(destination=destination)
    assert set(ledger.values_list("attempts", flat=True)) == {4}
    attempts = list(DeliveryAttempt.objects.filter(destination=destination).order_by("started_at"))
    assert [(a.outcome, a.status_code) for a in attempts] == [
        (AttemptOutcome.TRANSIENT, 503)
    ] * 3 + [(AttemptOutcome.DELIVERED, 200)]
    # A batch is a JSON array, in timestamp order, with one webhook-id across its retries.
    assert len({r.headers["webhook-id"] for r in target.requests}) == 1
    assert [e["messageId"] for e in target.requests[-1].events()] == sorted(ids)
    destination.refresh_from_db()
    assert destination.failing_since is None and not destination.paused


@pytest.mark.parametrize("status", [400, 410])
def test_permanent_answers_go_straight_to_dead(tmp_path, queue, status):
    with (
        receiver(lambda r, i: (status, {}, b'{"error": "no"}')) as target,
        celery_worker(tmp_path, queue),
    ):
        destination = hook(target.url)
        store_events(1)
        wait_for(lambda: statuses(destination) == {DeliveryStatus.DEAD: 1}, what="dead")
    delivery = Delivery.objects.get(destination=destination)
    assert delivery.attempts == 1 and f"HTTP {status}" in delivery.last_error
    assert len(target.requests) == 1
    destination.refresh_from_db()
    # 410 Gone means "stop sending" (Standard Webhooks): the destination is paused, saying why.
    assert destination.paused == (status == 410)
    if status == 410:
        assert "410" in destination.pause_reason


def test_429_retry_after_is_waited_out(tmp_path, queue):
    def limited(received, index):
        return (429, {"Retry-After": "2"}, b"slow down") if index == 0 else (200, {}, b"")

    with receiver(limited) as target, celery_worker(tmp_path, queue):
        destination = hook(target.url)
        store_events(1)
        wait_for(all_delivered(destination, 1), what="delivered")
    first, second = DeliveryAttempt.objects.filter(destination=destination).order_by("started_at")
    assert first.status_code == 429 and second.status_code == 200
    assert (second.started_at - first.started_at).total_seconds() >= 2
    assert target.requests[1].at - target.requests[0].at >= 2


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path, queue):
    arrived, release = threading.Event(), threading.Event()

    def blocking(received, index):
        if index == 0:
            arrived.set()
            release.wait(30)
        return 200, {}, b""

    with receiver(blocking) as target:
        with celery_worker(tmp_path, queue) as first_worker:
            destination = hook(target.url, batch_size=10, timeout_seconds=5)
            ids = store_events(25)
            assert arrived.wait(60)
            first_worker.kill()  # SIGKILL to the whole process group, mid-request
        release.set()
        assert statuses(destination).get(DeliveryStatus.IN_FLIGHT)
        with celery_worker(tmp_path, queue):
            wait_for(all_delivered(destination, 25), what="25 delivered")
    assert set(target.delivered_message_ids()) == set(ids)


def test_flushing_redis_loses_nothing(tmp_path, queue):
    arrived, release = threading.Event(), threading.Event()

    def blocking(received, index):
        if index == 0:
            arrived.set()
            release.wait(30)
        return 200, {}, b""

    with receiver(blocking) as target, celery_worker(tmp_path, queue):
        destination = hook(target.url, batch_size=10)
        ids = store_events(40)
        assert arrived.wait(60)
        # Queued and unacknowledged tasks all gone (FLUSHDB: the run's own database number).
        redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
        release.set()
        wait_for(all_delivered(destination, 40), what="40 delivered")
    assert set(target.delivered_message_ids()) == set(ids)


def test_two_workers_never_send_the_same_batch_at_once(tmp_path, queue):
    def slowish(received, index):
        threading.Event().wait(0.01)
        return 200, {}, b""

    with (
        receiver(slowish) as first,
        receiver(slowish) as second,
        receiver(slowish) as third,
        celery_worker(tmp_path, queue),
        celery_worker(tmp_path, queue, beat=False),
    ):
        targets = (first, second, third)
        destinations = [hook(t.url, batch_size=7, name=f"d{i}") for i, t in enumerate(targets)]
        ids = store_events(120)
        for destination in destinations:
            wait_for(all_delivered(destination, 120), what="all delivered")
    for target in targets:
        # No event was in two requests to the same receiver at the same moment...
        assert target.overlaps == []
        # ... and with no failure, none was sent twice at all.
        assert sorted(target.delivered_message_ids()) == sorted(ids)


def test_a_slow_destination_does_not_hold_back_a_healthy_one(tmp_path, queue):
    release = threading.Event()

    def stuck(received, index):
        release.wait(60)
        return 200, {}, b""

    with receiver(stuck) as slow, receiver() as healthy, celery_worker(tmp_path, queue):
        slow_destination = hook(slow.url, name="slow", timeout_seconds=60)
        healthy_destination = hook(healthy.url, name="healthy", batch_size=5)
        ids = store_events(30)
        wait_for(lambda: slow.requests, what="the slow destination is busy")
        wait_for(all_delivered(healthy_destination, 30), what="healthy delivered")
        assert not statuses(slow_destination).get(DeliveryStatus.DELIVERED)
        release.set()
        wait_for(all_delivered(slow_destination, 30), what="slow delivered", timeout=120)
    assert sorted(healthy.delivered_message_ids()) == sorted(ids)


def test_segment_destination_respects_the_batch_limits(tmp_path, queue):
    def api(received, index):
        ok = (
            received.path == "/v1/batch"
            and received.headers.get("authorization") == "Basic d2stMTIzOg=="  # wk-123:
            and len(received.body) <= 500 * 1024
            and len(orjson.loads(received.body)["batch"]) <= 2500
        )
        return (200, {}, b"{}") if ok else (400, {}, b"bad")

    with receiver(api) as target, celery_worker(tmp_path, queue):
        destination = destination_create(
            name="segment", kind="segment", url=target.url + "/", secret="wk-123", batch_size=500
        )
        padding = "x" * 20_000
        ids = store_events(40, properties={"campaign_id": 31, "padding": padding})
        wait_for(all_delivered(destination, 40), what="40 delivered")
    assert sorted(target.delivered_message_ids()) == sorted(ids)
    assert len(target.requests) >= 2  # 40 x 20 KB does not fit in one 500 KB request
    assert all(r.status == 200 for r in target.requests)


def test_circuit_breaker_pauses_and_resuming_sends_the_backlog(tmp_path, queue):
    healthy = threading.Event()

    def outage(received, index):
        return (200, {}, b"") if healthy.is_set() else (502, {}, b"bad gateway")

    with (
        receiver(outage) as target,
        celery_worker(tmp_path, queue, FORWARDING_PAUSE_AFTER_SECONDS="0"),
    ):
        destination = hook(target.url, batch_size=10)
        ids = store_events(12)
        wait_for(lambda: Destination.objects.get(pk=destination.pk).paused, what="paused")
        destination.refresh_from_db()
        assert "HTTP 502" in destination.pause_reason
        healthy.set()
        destination_resume(destination.pk)
        wait_for(all_delivered(destination, 12), what="backlog delivered")
    assert set(target.delivered_message_ids()) == set(ids)


def test_a_refused_url_pauses_the_destination_without_sending(tmp_path, queue):
    with (
        receiver() as target,
        celery_worker(tmp_path, queue, FORWARDING_ALLOW_PRIVATE_NETWORKS="0"),
    ):
        destination = hook(target.url)  # allowed here, refused by the worker's settings
        store_events(2)
        wait_for(lambda: Destination.objects.get(pk=destination.pk).paused, what="paused")
    destination.refresh_from_db()
    assert "refused" in destination.pause_reason
    assert target.requests == []
    assert statuses(destination) == {DeliveryStatus.PENDING: 2}


def test_the_request_rate_is_paced(tmp_path, queue):
    with receiver() as target, celery_worker(tmp_path, queue):
        destination = hook(target.url, max_requests_per_second=5)
        store_events(6)
        wait_for(all_delivered(destination, 6), what="6 delivered")
    starts = list(
        DeliveryAttempt.objects.filter(destination=destination)
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 5 and min(gaps) >= 0.2


def test_a_timeout_is_transient_and_retried(tmp_path, queue):
    release = threading.Event()

    def first_hangs(received, index):
        if index == 0:
            release.wait(30)
        return 200, {}, b""

    with receiver(first_hangs) as target, celery_worker(tmp_path, queue):
        destination = hook(target.url, timeout_seconds=1)
        ids = store_events(1)
        wait_for(all_delivered(destination, 1), what="delivered")
        release.set()
    first, second = DeliveryAttempt.objects.filter(destination=destination).order_by("started_at")
    assert first.outcome == AttemptOutcome.TRANSIENT and first.status_code is None
    assert "Timeout" in first.error
    assert second.outcome == AttemptOutcome.DELIVERED
    assert ids[0] in target.delivered_message_ids()
