"""Ledger writes: claiming due rows, and recording what an attempt did to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from metrics_source.forwarding.events import EVENT_JSON_SQL
from metrics_source.forwarding.models import DeliveryAttempt
from metrics_source.forwarding.sql import DELIVERY, EVENT

ATTEMPT = DeliveryAttempt._meta.db_table

_CLAIM_SQL = (
    f"WITH claimed AS (UPDATE {DELIVERY} SET status = 'in_flight', claimed_by = %s, "  # noqa: S608
    "claim_expires_at = now() + make_interval(secs => %s), "
    "next_attempt_at = now() + make_interval(secs => %s) "
    f"WHERE id IN (SELECT id FROM {DELIVERY} WHERE destination_id = %s "
    "AND status IN ('pending', 'failed', 'in_flight') AND next_attempt_at <= now() "
    "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
    "RETURNING id, event_id, attempts) "
    f"SELECT c.id, c.event_id, c.attempts, e.message_id, {EVENT_JSON_SQL} "
    f"FROM claimed c LEFT JOIN {EVENT} e ON e.id = c.event_id ORDER BY e.timestamp, e.id"
)


@dataclass(slots=True)
class Claimed:
    delivery_id: int
    event_id: int
    attempts: int
    # None when the event was deleted since fan-out.
    message_id: str | None
    body: bytes | None


def deliveries_claim(
    *, destination_id: int, worker: str, limit: int, seconds: float
) -> list[Claimed]:
    """Claim up to ``limit`` due rows, with their events as JSON, in timestamp order.

    SKIP LOCKED lets two workers claim disjoint batches at the same moment; the claim moves
    next_attempt_at to its expiry, so a worker that dies mid-batch leaves rows that become due
    again by themselves (at least once: they may then be sent twice, never lost). Claiming and
    reading the events is one statement: one round trip per batch."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [worker, seconds, seconds, destination_id, limit])
        return [
            Claimed(row[0], row[1], row[2], row[3], None if row[4] is None else bytes(row[4]))
            for row in cursor.fetchall()
        ]


def deliveries_release(ids: list[int]) -> None:
    """Give claimed rows back untouched (they did not fit in this request)."""
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DELIVERY} SET status = 'pending', next_attempt_at = now(), "  # noqa: S608
                "claimed_by = '', claim_expires_at = NULL WHERE id = ANY(%s::bigint[])",
                [ids],
            )


def deliveries_delivered(attempts: list[dict]) -> None:
    """Log the attempts and mark the rows they carried delivered, in one statement (the common
    case: one round trip and one commit for any number of requests)."""
    if not attempts:
        return
    columns = list(attempts[0])
    row = f"({', '.join(['%s'] * len(columns))})"
    ids = [delivery_id for attempt in attempts for delivery_id in attempt["delivery_ids"]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH logged AS (INSERT INTO {ATTEMPT} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES {', '.join([row] * len(attempts))} RETURNING id) "
            f"UPDATE {DELIVERY} SET status = 'delivered', delivered_at = now(), "
            "attempts = attempts + 1, last_error = '', claimed_by = '', "
            "claim_expires_at = NULL WHERE id = ANY(%s::bigint[])",
            [value for attempt in attempts for value in attempt.values()] + [ids],
        )


def deliveries_dead(ids: list[int], *, error: str, count_attempt: bool = True) -> None:
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DELIVERY} SET status = 'dead', attempts = attempts + %s, "  # noqa: S608
                "last_error = %s, claimed_by = '', claim_expires_at = NULL "
                "WHERE id = ANY(%s::bigint[])",
                [1 if count_attempt else 0, error, ids],
            )


def deliveries_retry(
    rows: list[tuple[int, str, datetime | None]], *, error: str, now: datetime
) -> None:
    """Transient failure: each row (id, 'failed' or 'dead', next attempt time)."""
    if not rows:
        return
    ids = [row[0] for row in rows]
    statuses = [row[1] for row in rows]
    nexts = [row[2] or now for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DELIVERY} d SET status = v.status, next_attempt_at = v.next_at, "  # noqa: S608
            "attempts = d.attempts + 1, last_error = %s, claimed_by = '', "
            "claim_expires_at = NULL "
            "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, status, next_at) "
            "WHERE d.id = v.id",
            [error, ids, statuses, nexts],
        )


def deliveries_recover(destination_id: int) -> None:
    """After a destination answers again, its failed rows need not wait out their backoff."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DELIVERY} SET next_attempt_at = now() "  # noqa: S608
            "WHERE destination_id = %s AND status = 'failed' AND next_attempt_at > now()",
            [destination_id],
        )
