"""Destination state shared by workers: the drain lease, request pacing, circuit breaker."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from metrics_source.forwarding.ledger import deliveries_recover
from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.sql import DELIVERY, DESTINATION


def destination_lease(destination_id: int, *, seconds: float) -> Destination | None:
    """Take (or renew) the right to drain the destination; None while another worker has it,
    or when it is disabled or paused. Expires by itself if the worker dies."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DESTINATION} SET queued_until = NULL "  # noqa: S608
            "WHERE id = %s AND queued_until IS NOT NULL",
            [destination_id],
        )
        cursor.execute(
            f"UPDATE {DESTINATION} SET lease_until = now() + make_interval(secs => %s) "  # noqa: S608
            "WHERE id = %s AND enabled AND NOT paused "
            "AND (lease_until IS NULL OR lease_until < now()) RETURNING id",
            [seconds, destination_id],
        )
        if cursor.fetchone() is None:
            return None
    return Destination.objects.get(pk=destination_id)


def destination_renew(destination_id: int, *, seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DESTINATION} SET lease_until = now() + make_interval(secs => %s) "  # noqa: S608
            "WHERE id = %s",
            [seconds, destination_id],
        )


def destination_release(destination_id: int, *, next_request_at: datetime | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DESTINATION} SET lease_until = NULL, next_request_at = %s "  # noqa: S608
            "WHERE id = %s",
            [next_request_at, destination_id],
        )


def destination_pause(destination_id: int, *, reason: str) -> None:
    Destination.objects.filter(pk=destination_id).update(paused=True, pause_reason=reason[:2000])


def destination_succeeded(destination: Destination) -> None:
    if destination.failing_since is not None:
        Destination.objects.filter(pk=destination.pk).update(failing_since=None)
        destination.failing_since = None
        deliveries_recover(destination.pk)


def destination_failed(destination: Destination, *, error: str) -> bool:
    """Record a failure; pause the destination (True) when it has failed without a success
    for FORWARDING_PAUSE_AFTER_SECONDS."""
    now = timezone.now()
    if destination.failing_since is None:
        destination.failing_since = now
        Destination.objects.filter(pk=destination.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        destination.refresh_from_db(fields=["failing_since"])
    assert destination.failing_since is not None
    failing_for = now - destination.failing_since
    if failing_for >= timedelta(seconds=settings.FORWARDING_PAUSE_AFTER_SECONDS):
        since = f"{destination.failing_since:%Y-%m-%d %H:%M:%S} UTC"
        destination_pause(
            destination.pk,
            reason=f"Paused automatically: failing since {since} without a success. "
            f"Last error: {error}",
        )
        return True
    return False


def destination_resume(destination_id: int) -> None:
    """Unpause; the backlog (pending and failed rows) becomes due now."""
    Destination.objects.filter(pk=destination_id).update(
        paused=False, pause_reason="", failing_since=None, next_request_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DELIVERY} SET next_attempt_at = now() "  # noqa: S608
            "WHERE destination_id = %s AND status IN ('pending', 'failed') "
            "AND next_attempt_at > now()",
            [destination_id],
        )


def destination_create(*, sources: tuple = (), **fields) -> Destination:
    """A new destination; it receives events stored from now on (and from backfill_from, if
    set). Raises UrlRefused for a URL inside the network (FORWARDING_ALLOW_PRIVATE_NETWORKS)."""
    from metrics_source.forwarding.fanout import destination_prepare_new
    from metrics_source.forwarding.kinds import KINDS
    from metrics_source.forwarding.ssrf import check_url

    destination = Destination(**fields)
    check_url(KINDS[destination.kind].url_to_check(destination))
    destination_prepare_new(destination)
    destination.save()
    if sources:
        destination.sources.set(sources)
    return destination
