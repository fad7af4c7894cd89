"""Ledger writes: claiming due rows, and recording what an attempt did to them."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from metrics_source.forwarding.sql import DELIVERY

_CLAIM_SQL = (
    f"UPDATE {DELIVERY} SET status = 'in_flight', claimed_by = %s, "  # noqa: S608
    "claim_expires_at = now() + make_interval(secs => %s), "
    "next_attempt_at = now() + make_interval(secs => %s) "
    f"WHERE id IN (SELECT id FROM {DELIVERY} WHERE destination_id = %s "
    "AND status IN ('pending', 'failed', 'in_flight') AND next_attempt_at <= now() "
    "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
    "RETURNING id, event_id, attempts"
)


def deliveries_claim(
    *, destination_id: int, worker: str, limit: int, seconds: float
) -> list[tuple[int, int, int]]:
    """Claim up to ``limit`` due rows: (delivery id, event id, attempts so far).

    SKIP LOCKED lets two workers claim disjoint batches at the same moment; the claim moves
    next_attempt_at to its expiry, so a worker that dies mid-batch leaves rows that become due
    again by themselves (at least once: they may then be sent twice, never lost)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [worker, seconds, seconds, destination_id, limit])
        return [tuple(row) for row in cursor.fetchall()]


def deliveries_release(ids: list[int]) -> None:
    """Give claimed rows back untouched (they did not fit in this request)."""
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DELIVERY} SET status = 'pending', next_attempt_at = now(), "  # noqa: S608
                "claimed_by = '', claim_expires_at = NULL WHERE id = ANY(%s::bigint[])",
                [ids],
            )


def deliveries_delivered(ids: list[int]) -> None:
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DELIVERY} SET status = 'delivered', delivered_at = now(), "  # noqa: S608
                "attempts = attempts + 1, last_error = '', claimed_by = '', "
                "claim_expires_at = NULL WHERE id = ANY(%s::bigint[])",
                [ids],
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
