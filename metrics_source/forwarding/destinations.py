"""Destination services: creation (the checks the admin and the commands share, the generated
signing secret), pause and resume, and the state shared by workers: the drain lease, request
pacing, circuit breaker."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from metrics_source.forwarding.fanout import destination_prepare_new
from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.ledger import deliveries_recover
from metrics_source.forwarding.models import Destination, DestinationKind
from metrics_source.forwarding.signing import new_secret, secret_key
from metrics_source.forwarding.sql import DELIVERY, DESTINATION
from metrics_source.forwarding.ssrf import UrlRefused, check_url
from metrics_source.ingest.catalog import Channel

# Headers the kinds set themselves; extra headers may not override them.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        # Hop-by-hop and framing headers: the client sets them, and a second copy would make
        # the request read two ways.
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
    }
)
# RFC 9110 field names (tokens) and values (visible characters, spaces and tabs inside).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VISIBLE = r"\x21-\x7e\x80-\xff"
_HEADER_VALUE = re.compile(rf"^[{_VISIBLE}](?:[\t {_VISIBLE}]*[{_VISIBLE}])?$")


def header_problems(headers: object) -> str | None:
    """Why these extra headers cannot be sent, or None. Checked on save and before each
    request (a row stored by an older release may hold anything)."""
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return 'A JSON object of strings, e.g. {"X-Team": "growth"}.'
    bad_names = sorted(repr(name) for name in headers if not _HEADER_NAME.match(name))
    if bad_names:
        return (
            f"Not a header name: {', '.join(bad_names)} (letters, digits and -, no spaces or "
            "colons)."
        )
    bad_values = sorted(name for name, value in headers.items() if not _HEADER_VALUE.match(value))
    if bad_values:
        return (
            f"The value of {', '.join(bad_values)} is empty, starts or ends with a space, or "
            "holds a line break or control character."
        )
    reserved = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if reserved:
        return f"Set by the destination kind: {', '.join(reserved)}."
    return None


TIMEOUT_RANGE = (0.5, 60.0)


class DestinationInvalid(ValueError):
    """A destination the rules refuse; ``problems`` maps each field to why (safe to show)."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{field}: {why.rstrip('.')}" for field, why in problems.items())
        )


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


def destination_problems(destination: Destination) -> dict[str, str]:
    """What the rules refuse in a destination, by field (empty: nothing): a known kind, a URL
    outside the network (ssrf.py), the kind's secret, known channels (a misspelt one would
    match nothing, silently), a batch size the kind accepts, a timeout in range, extra headers
    that leave the kind's own alone."""
    problems: dict[str, str] = {}
    kind = KINDS.get(destination.kind)
    if kind is None:
        known = ", ".join(KINDS)
        return {"kind": f"unknown kind {destination.kind!r}; one of: {known}."}
    try:
        check_url(kind.url_to_check(destination))
    except UrlRefused as error:
        problems["url"] = str(error)
    if destination.kind == DestinationKind.WEBHOOK:
        for name in ("secret", "previous_secret"):
            if getattr(destination, name):
                try:
                    secret_key(getattr(destination, name))
                except ValueError as error:
                    problems[name] = str(error)
    elif destination.kind == DestinationKind.SEGMENT and not destination.secret:
        problems["secret"] = "A Segment-compatible destination needs its write key."  # noqa: S105
    unknown = sorted(set(destination.channels) - {channel.value for channel in Channel})
    if unknown:
        problems["channels"] = (
            f"Unknown channel(s): {', '.join(unknown)}; one of: {', '.join(Channel)}."
        )
    if not 1 <= destination.batch_size <= kind.max_events:
        problems["batch_size"] = f"Between 1 and {kind.max_events} events for this kind."
    low, high = TIMEOUT_RANGE
    if not low <= destination.timeout_seconds <= high:
        problems["timeout_seconds"] = f"Between {low} and {high:.0f} seconds."
    rate = destination.max_requests_per_second
    if rate is not None and rate <= 0:
        problems["max_requests_per_second"] = "More than 0, or blank for no limit."
    header_problem = header_problems(destination.extra_headers)
    if header_problem:
        problems["extra_headers"] = header_problem
    return problems


def destination_save_new(destination: Destination) -> None:
    """Check and save a new destination; a webhook given no signing secret gets one, which
    the caller shows once (``destination.secret``). It receives the events stored from now on
    (and from backfill_from, if set). Raises UrlRefused for a URL inside the network
    (FORWARDING_ALLOW_PRIVATE_NETWORKS), DestinationInvalid for anything else refused."""
    problems = destination_problems(destination)
    if "url" in problems:
        raise UrlRefused(problems["url"])
    if Destination.objects.filter(name=destination.name).exists():
        problems["name"] = f"a destination named {destination.name!r} already exists."
    if problems:
        raise DestinationInvalid(problems)
    if destination.kind == DestinationKind.WEBHOOK and not destination.secret:
        destination.secret = new_secret()
    destination_prepare_new(destination)
    destination.save()


def destination_create(*, sources: tuple = (), **fields) -> Destination:
    """A new destination from its fields (see destination_save_new)."""
    destination = Destination(**fields)
    destination_save_new(destination)
    if sources:
        destination.sources.set(sources)
    return destination
