"""Delivering a destination's due ledger rows: claim a batch, send it, record what happened."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from metrics_source.forwarding.destinations import (
    destination_failed,
    destination_lease,
    destination_pause,
    destination_release,
    destination_renew,
    destination_succeeded,
    header_problems,
)
from metrics_source.forwarding.http import HttpResult, post
from metrics_source.forwarding.kinds import KINDS, Kind, OutboundRequest
from metrics_source.forwarding.ledger import (
    Claimed,
    deliveries_claim,
    deliveries_dead,
    deliveries_delivered,
    deliveries_release,
    deliveries_retry,
)
from metrics_source.forwarding.models import AttemptOutcome, DeliveryAttempt, Destination
from metrics_source.forwarding.retry import Verdict, classify, jitter_factor, retry_delay
from metrics_source.forwarding.ssrf import UrlRefused, check_url

# A destination that failed is probed again at most this long after (its rows keep their own
# schedule); a longer Retry-After still wins.
MAX_DESTINATION_BACKOFF = 60.0
# Waits shorter than this (request pacing) are slept in the task; longer ones free the worker
# and the sweep comes back.
MAX_SLEEP = 1.0
# One claim takes rows for several requests, sent one after the other: two statements for
# them all instead of two per request.
REQUESTS_PER_CLAIM = 50
ROWS_PER_CLAIM = 1000


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class BatchResult:
    claimed: int
    next_request_at: datetime | None = None
    stop: bool = False


def _claim_seconds(destination: Destination) -> float:
    return destination.timeout_seconds * 2 + settings.FORWARDING_CLAIM_MARGIN_SECONDS


def _attempt_fields(
    destination: Destination,
    *,
    started_at: datetime,
    result: HttpResult,
    verdict: Verdict,
    request: OutboundRequest,
    delivery_ids: list[int],
) -> dict:
    return {
        "destination_id": destination.pk,
        "started_at": started_at,
        "duration_ms": result.duration_ms,
        "outcome": verdict.outcome.value,
        "status_code": result.status,
        "response_excerpt": result.excerpt,
        "error": verdict.reason if verdict.outcome != AttemptOutcome.DELIVERED else "",
        "webhook_id": request.request_id[:200],
        "delivery_ids": delivery_ids,
    }


Item = tuple[int, int, bytes, str]  # delivery id, attempts so far, event JSON, messageId


def _pack(
    kind: Kind, claimed: list[Claimed], per_request: int
) -> tuple[list[list[Item]], list[int]]:
    """The claimed rows as requests, in timestamp order, each within the destination's batch
    size and the kind's limits; and the ids too large to send (or whose event is gone)."""
    groups: list[list[Item]] = []
    too_large: list[int] = []
    size = 0
    for row in claimed:
        body = row.body
        if (
            body is None
            or row.message_id is None
            or (kind.max_event_bytes is not None and len(body) > kind.max_event_bytes)
        ):
            too_large.append(row.delivery_id)
            continue
        full = bool(groups) and (
            len(groups[-1]) >= per_request
            or (
                kind.max_request_bytes is not None and size + len(body) + 1 > kind.max_request_bytes
            )
        )
        if not groups or full:
            groups.append([])
            size = 0
        groups[-1].append((row.delivery_id, row.attempts, body, row.message_id))
        size += len(body) + 1
    return groups, too_large


def deliver_batch(destination: Destination, *, worker: str) -> BatchResult:
    """Claim due rows, send them as requests of the destination's batch size one after the
    other, and record what happened (all the successes in one statement)."""
    kind = KINDS[destination.kind]
    per_request = max(1, min(destination.batch_size, kind.max_events))
    claimed = deliveries_claim(
        destination_id=destination.pk,
        worker=worker,
        limit=per_request * max(1, min(REQUESTS_PER_CLAIM, ROWS_PER_CLAIM // per_request)),
        seconds=_claim_seconds(destination),
    )
    if not claimed:
        return BatchResult(claimed=0)
    claimed_at = time.monotonic()
    groups, too_large = _pack(kind, claimed, per_request)
    deliveries_dead(
        too_large, error="the event is larger than the destination accepts", count_attempt=False
    )
    if not groups:
        return BatchResult(claimed=len(claimed))
    try:
        target = check_url(kind.url_to_check(destination))
    except UrlRefused as refused:
        deliveries_release([item[0] for group in groups for item in group])
        destination_pause(destination.pk, reason=f"Paused: the URL is refused: {refused}")
        return BatchResult(claimed=len(claimed), stop=True)
    # A row saved before the header rules (or edited in the database) could make the client
    # raise mid-request; it pauses with the reason instead, the batch back in the queue.
    header_problem = header_problems(destination.extra_headers)
    if header_problem:
        deliveries_release([item[0] for group in groups for item in group])
        destination_pause(
            destination.pk, reason=f"Paused: the extra headers are refused: {header_problem}"
        )
        return BatchResult(claimed=len(claimed), stop=True)

    delivered: list[dict] = []
    next_request_at: datetime | None = None
    for index, group in enumerate(groups):
        if index:
            wait = 0.0
            if next_request_at is not None:
                wait = (next_request_at - timezone.now()).total_seconds()
            # Stop while the claim still covers a whole request, or when pacing would idle.
            if time.monotonic() - claimed_at > destination.timeout_seconds or wait > MAX_SLEEP:
                deliveries_release([item[0] for rest in groups[index:] for item in rest])
                break
            if wait > 0:
                time.sleep(wait)
        request = kind.request(
            destination, [item[2] for item in group], [item[3] for item in group]
        )
        started_at = timezone.now()
        result = post(request, target=target, timeout=destination.timeout_seconds)
        now = timezone.now()
        verdict = classify(result, now=now)
        attempt = _attempt_fields(
            destination,
            started_at=started_at,
            result=result,
            verdict=verdict,
            request=request,
            delivery_ids=[item[0] for item in group],
        )
        next_request_at = _paced(destination, started_at)
        if verdict.outcome == AttemptOutcome.DELIVERED:
            delivered.append(attempt)
            continue
        _record_delivered(destination, delivered)
        deliveries_release([item[0] for rest in groups[index + 1 :] for item in rest])
        # A failure's attempt, ledger rows and destination state commit together.
        with transaction.atomic():
            DeliveryAttempt.objects.create(**attempt)
            return _record_failure(destination, group, result, verdict, next_request_at, now)
    _record_delivered(destination, delivered)
    return BatchResult(claimed=len(claimed), next_request_at=next_request_at)


def _record_delivered(destination: Destination, attempts: list[dict]) -> None:
    if attempts:
        deliveries_delivered(attempts)
        destination_succeeded(destination)


def _record_failure(
    destination: Destination,
    chosen: list[Item],
    result: HttpResult,
    verdict: Verdict,
    next_request_at: datetime | None,
    now: datetime,
) -> BatchResult:
    ids = [item[0] for item in chosen]
    claimed = len(chosen)
    error = verdict.reason + (f": {result.excerpt[:300]}" if result.excerpt else "")
    stop = False
    if verdict.outcome == AttemptOutcome.PERMANENT:
        deliveries_dead(ids, error=error)
        if verdict.gone:
            destination_pause(destination.pk, reason=f"Paused: the destination answered {error}")
            stop = True
    else:
        retries: list[tuple[int, str, datetime | None]] = []
        first_delay = None
        jitter = jitter_factor()
        for delivery_id, attempts, _, _ in chosen:
            delay = retry_delay(attempts + 1, verdict.retry_after, jitter=jitter)
            if first_delay is None:
                first_delay = delay
            if delay is None:
                retries.append((delivery_id, "dead", None))
            else:
                retries.append((delivery_id, "failed", now + timedelta(seconds=delay)))
        deliveries_retry(retries, error=error, now=now)
        backoff = min(first_delay or 0.0, MAX_DESTINATION_BACKOFF)
        backoff = max(backoff, verdict.retry_after or 0.0)
        candidate = now + timedelta(seconds=backoff)
        next_request_at = max(next_request_at or candidate, candidate)
        stop = True
    if destination_failed(destination, error=error):
        stop = True
    return BatchResult(claimed=claimed, next_request_at=next_request_at, stop=stop)


def _paced(destination: Destination, started_at: datetime) -> datetime | None:
    rate = destination.max_requests_per_second
    if not rate or rate <= 0:
        return None
    return started_at + timedelta(seconds=1.0 / rate)


def destination_drain(*, destination_id: int) -> bool:
    """Deliver due batches for up to FORWARDING_TASK_SECONDS while holding the destination's
    lease; True when due work is left for a follow-up task."""
    probe = Destination.objects.filter(pk=destination_id).only("timeout_seconds").first()
    if probe is None:
        return False
    lease_seconds = _claim_seconds(probe)
    destination = destination_lease(destination_id, seconds=lease_seconds)
    if destination is None:
        return False
    worker = worker_id()
    deadline = time.monotonic() + settings.FORWARDING_TASK_SECONDS
    with connection.cursor() as cursor:
        # Safe for at-least-once: a commit lost in a database crash only makes a claim or a
        # "delivered" vanish, so the batch is sent again; never an event lost. It saves a disk
        # flush per statement, most of the cost of a batch.
        cursor.execute("SET synchronous_commit TO off")
    next_request_at = destination.next_request_at
    renewed = time.monotonic()
    more = False
    try:
        while True:
            if next_request_at is not None:
                wait = (next_request_at - timezone.now()).total_seconds()
                if wait > MAX_SLEEP:
                    break  # the sweep comes back once next_request_at has passed
                if wait > 0:
                    time.sleep(wait)
            result = deliver_batch(destination, worker=worker)
            if result.claimed == 0:
                break
            next_request_at = result.next_request_at
            if result.stop:
                break
            if time.monotonic() >= deadline:
                more = True
                break
            # Renew well before expiry, not after every batch: one statement fewer per batch.
            if time.monotonic() - renewed > lease_seconds / 3:
                destination_renew(destination_id, seconds=lease_seconds)
                renewed = time.monotonic()
    finally:
        destination_release(destination_id, next_request_at=next_request_at)
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    return more
