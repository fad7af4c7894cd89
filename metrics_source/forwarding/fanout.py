"""Fan-out: ledger rows for new events, one INSERT ... SELECT per destination.

Nothing runs per event in the ingest request. The sweep (and a wake-up after ingest) inserts a
pending Delivery for every event above the destination's ``fanout_floor`` that matches its
filters.

Why a floor that lags: ids come from a sequence, but transactions commit in any order, so an
event with a lower id can become visible after one with a higher id. The floor therefore only
advances to a sequence value read at an earlier run, once every transaction that was running
then has ended (the current snapshot's xmin has passed that run's xmax); until then the
events above it are scanned again, and ``ON CONFLICT DO NOTHING`` keeps one row each.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction

from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.sql import (
    DELIVERY,
    DESTINATION,
    destination_filter_sql,
    last_event_id_allocated,
    ledger_insert_sql,
)

# The first key of the advisory lock (the second is the destination id).
FANOUT_LOCK = 0x46574444


def destination_prepare_new(destination: Destination) -> None:
    """Before a new destination is first saved: events stored so far are not its business
    (unless it backfills, which the first fan-out does)."""
    destination.fanout_floor = last_event_id_allocated()
    destination.fanout_pending_floor = None
    destination.fanout_pending_xmax = None
    destination.backfill_done = destination.backfill_from is None


def _snapshot_bounds() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
        )
        xmin, xmax = cursor.fetchone()
        return int(xmin), int(xmax)


def destination_fanout(*, destination_id: int) -> int:
    """Create the ledger rows the destination is missing; returns how many were created.

    A worker already fanning this destination out is skipped (row lock, SKIP LOCKED)."""
    with transaction.atomic():
        # One fan-out per destination at a time, through an advisory lock rather than a lock
        # on the destination row: a row lock held while the INSERT waits on ledger rows that
        # a delivering worker is updating would deadlock with that worker, whose attempt log
        # references the destination row.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", [FANOUT_LOCK, destination_id]
            )
            if not cursor.fetchone()[0]:
                return 0
        destination = Destination.objects.filter(pk=destination_id, enabled=True).first()
        if destination is None:
            return 0
        # The order matters: the sequence first, then the snapshot, so a transaction holding
        # an id at or below `allocated` is either finished or below the snapshot's xmax.
        allocated = last_event_id_allocated()
        xmin, xmax = _snapshot_bounds()
        where, params = destination_filter_sql(destination)
        created = 0
        with connection.cursor() as cursor:
            if not destination.backfill_done and destination.backfill_from is not None:
                cursor.execute(
                    ledger_insert_sql(f"e.id <= %s AND e.timestamp >= %s AND {where}"),
                    [destination.pk, destination.fanout_floor, destination.backfill_from, *params],
                )
                created += cursor.rowcount
            cursor.execute(
                ledger_insert_sql(f"e.id > %s AND {where}"),
                [destination.pk, destination.fanout_floor, *params],
            )
            created += cursor.rowcount
        pending_xmax = destination.fanout_pending_xmax
        if pending_xmax is not None and xmin >= pending_xmax:
            destination.fanout_floor = max(
                destination.fanout_floor, destination.fanout_pending_floor or 0
            )
            pending_xmax = None
        if pending_xmax is None:
            destination.fanout_pending_floor, destination.fanout_pending_xmax = allocated, xmax
        destination.backfill_done = True
        destination.save(
            update_fields=[
                "fanout_floor",
                "fanout_pending_floor",
                "fanout_pending_xmax",
                "backfill_done",
            ]
        )
        return created


def fanout_all() -> int:
    """Fan out to every enabled destination (paused ones too: their ledger keeps growing, so
    resuming sends the backlog)."""
    ids = Destination.objects.filter(enabled=True).values_list("pk", flat=True)
    return sum(destination_fanout(destination_id=pk) for pk in ids)


def destinations_due() -> list[int]:
    """Destinations with a delivery due now and no task queued or running for them; marks
    them queued (a conditional UPDATE, so two sweeps never enqueue the same one twice)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DESTINATION} d SET queued_until = now() + make_interval(secs => %s) "  # noqa: S608
            "WHERE d.enabled AND NOT d.paused "
            "AND (d.queued_until IS NULL OR d.queued_until < now()) "
            "AND (d.lease_until IS NULL OR d.lease_until < now()) "
            "AND (d.next_request_at IS NULL OR d.next_request_at <= now()) "
            f"AND EXISTS (SELECT 1 FROM {DELIVERY} l WHERE l.destination_id = d.id "
            "AND l.status IN ('pending', 'failed', 'in_flight') AND l.next_attempt_at <= now()) "
            "RETURNING d.id",
            [settings.FORWARDING_REQUEUE_SECONDS],
        )
        return [row[0] for row in cursor.fetchall()]
