""" "Send test event": one synthetic event to a destination, answer reported to the operator.

Nothing enters the ledger; the request is logged as an attempt so the health view shows it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from django.utils import timezone

from metrics_source.forwarding.destinations import header_problems
from metrics_source.forwarding.http import HttpResult, post
from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.models import DeliveryAttempt, Destination
from metrics_source.forwarding.retry import Verdict, classify
from metrics_source.forwarding.ssrf import UrlRefused, check_url
from metrics_source.ingest.mapping import iso


@dataclass(slots=True)
class ProbeResult:
    verdict: Verdict
    result: HttpResult
    message_id: str


def test_event(message_id: str) -> dict:
    now = iso(timezone.now())
    return {
        "type": "track",
        "event": "Email Delivered",
        "userId": "metrics-source-test",
        "messageId": message_id,
        "timestamp": now,
        "originalTimestamp": now,
        "receivedAt": now,
        "context": {"traits": {}},
        "properties": {"test": True, "delivery_id": message_id},
    }


def destination_send_test(destination: Destination) -> ProbeResult:
    """Raises UrlRefused when the URL (or the extra headers sent to it) may not be used."""
    kind = KINDS[destination.kind]
    target = check_url(kind.url_to_check(destination))
    header_problem = header_problems(destination.extra_headers)
    if header_problem:
        raise UrlRefused(f"the extra headers: {header_problem}")
    message_id = f"test-{uuid.uuid4()}"
    request = kind.request(destination, [orjson.dumps(test_event(message_id))], [message_id])
    started_at = timezone.now()
    result = post(request, target=target, timeout=destination.timeout_seconds)
    verdict = classify(result, now=timezone.now())
    DeliveryAttempt.objects.create(
        destination=destination,
        started_at=started_at,
        duration_ms=result.duration_ms,
        outcome=verdict.outcome,
        status_code=result.status,
        response_excerpt=result.excerpt,
        error=verdict.reason,
        webhook_id=request.request_id[:200],
        delivery_ids=[],
    )
    return ProbeResult(verdict, result, message_id)
