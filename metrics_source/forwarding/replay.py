"""Replay: make ledger rows pending again (or create them for events the destination never
had), in bulk. The same event keeps its messageId, so receivers can dedupe (it is also the
webhook-id of a one-event request)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import connection

from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.sql import DELIVERY, EVENT, destination_filter_sql

# Rows being sent right now are left alone: they end delivered or failed by themselves.
RESET_SQL = (
    "status = 'pending', next_attempt_at = now(), attempts = 0, last_error = '', "
    "claimed_by = '', claim_expires_at = NULL"
)
CHUNK_IDS = 50_000


def deliveries_replay(*, destination_id: int, statuses: list[str] | None = None,
                      delivery_ids: list[int] | None = None) -> int:  # fmt: skip
    """Replay ledger rows of a destination by status and/or id; returns how many."""
    clauses = ["destination_id = %s", "status <> 'in_flight'"]
    params: list = [destination_id]
    if statuses:
        clauses.append("status = ANY(%s::text[])")
        params.append(statuses)
    if delivery_ids is not None:
        clauses.append("id = ANY(%s::bigint[])")
        params.append(delivery_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DELIVERY} SET {RESET_SQL} WHERE {' AND '.join(clauses)}",  # noqa: S608
            params,
        )
        return cursor.rowcount


def events_replay(
    *,
    destination_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    message_ids: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """(Re)send the events matching the destination's filters in [since, until) (or with these
    messageIds), whether or not it had them before. Works in chunks of event ids so a large
    replay neither holds long locks nor hides its progress; returns the rows made pending."""
    destination = Destination.objects.get(pk=destination_id)
    where, filter_params = destination_filter_sql(destination)
    clauses, params = [where], list(filter_params)
    if since is not None:
        clauses.append("e.timestamp >= %s")
        params.append(since)
    if until is not None:
        clauses.append("e.timestamp < %s")
        params.append(until)
    if message_ids is not None:
        clauses.append("e.message_id = ANY(%s::text[])")
        params.append(message_ids)
    condition = " AND ".join(clauses)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(e.id), max(e.id) FROM {EVENT} e WHERE {condition}", params)  # noqa: S608
        low, high = cursor.fetchone()
        if low is None:
            return 0
        replayed = 0
        for start in range(low, high + 1, CHUNK_IDS):
            cursor.execute(
                f"INSERT INTO {DELIVERY} (destination_id, event_id, status, attempts, "  # noqa: S608
                "next_attempt_at, last_error, created_at, claimed_by) "
                f"SELECT %s, e.id, 'pending', 0, now(), '', now(), '' FROM {EVENT} e "
                f"WHERE e.id >= %s AND e.id < %s AND {condition} "
                f"ON CONFLICT (destination_id, event_id) DO UPDATE SET {RESET_SQL} "
                f"WHERE {DELIVERY}.status <> 'in_flight'",
                [destination_id, start, start + CHUNK_IDS, *params],
            )
            replayed += cursor.rowcount
            if progress is not None:
                progress(min(start + CHUNK_IDS, high + 1) - low, high + 1 - low)
        return replayed
