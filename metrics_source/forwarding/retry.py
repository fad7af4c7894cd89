"""What a destination's answer means, and when to try again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.conf import settings

from metrics_source.forwarding.http import HttpResult
from metrics_source.forwarding.models import AttemptOutcome

# A Retry-After further out than this is capped: the ledger retries, not the destination.
MAX_RETRY_AFTER = 24 * 3600.0
JITTER = 0.2


@dataclass(slots=True)
class Verdict:
    outcome: AttemptOutcome
    reason: str
    retry_after: float | None = None
    # 410 Gone: the receiver asks to stop sending (Standard Webhooks); pause the destination.
    gone: bool = False


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def classify(result: HttpResult, *, now: datetime) -> Verdict:
    """Timeouts, connection errors, 5xx, 408 and 429 are transient; 2xx delivered; anything
    else (other 4xx, and 3xx since redirects are not followed) is permanent."""
    if result.status is None:
        return Verdict(AttemptOutcome.TRANSIENT, result.error or "no answer")
    status = result.status
    if 200 <= status < 300:
        return Verdict(AttemptOutcome.DELIVERED, "")
    reason = f"HTTP {status}"
    if status >= 500 or status in (408, 429):
        return Verdict(
            AttemptOutcome.TRANSIENT, reason, parse_retry_after(result.retry_after, now=now)
        )
    return Verdict(AttemptOutcome.PERMANENT, reason, gone=status == 410)


def jitter_factor() -> float:
    return random.uniform(1 - JITTER, 1 + JITTER)


def retry_delay(
    attempts_made: int, retry_after: float | None = None, *, jitter: float | None = None
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts, or None when the
    schedule is exhausted (the delivery is dead). Rows of one batch share one ``jitter``
    factor, so they come due together and stay one batch."""
    schedule = settings.FORWARDING_RETRY_SCHEDULE
    if attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    delay = base * (jitter_factor() if jitter is None else jitter)
    return max(delay, retry_after or 0.0)
