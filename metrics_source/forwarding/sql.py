"""Table names and the event-id sequence, for the set-based SQL of fan-out and replay."""

from __future__ import annotations

from functools import cache

from django.db import connection

from metrics_source.forwarding.models import Delivery, Destination
from metrics_source.models import Event

EVENT = Event._meta.db_table
DELIVERY = Delivery._meta.db_table
DESTINATION = Destination._meta.db_table
DESTINATION_SOURCES = Destination.sources.through._meta.db_table


@cache
def _event_sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [EVENT])
        return cursor.fetchone()[0]


def last_event_id_allocated() -> int:
    """The highest event id handed out so far, committed or not (0 when none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "  # noqa: S608
            f"FROM {_event_sequence()}"
        )
        return int(cursor.fetchone()[0])


def destination_filter_sql(destination: Destination, alias: str = "e") -> tuple[str, list]:
    """A WHERE fragment (always valid, "TRUE" when unfiltered) selecting the events the
    destination receives, with its parameters."""
    clauses: list[str] = []
    params: list = []
    if destination.channels:
        clauses.append(f"{alias}.channel = ANY(%s::text[])")
        params.append(list(destination.channels))
    if destination.event_names:
        clauses.append(f"{alias}.event = ANY(%s::text[])")
        params.append(list(destination.event_names))
    source_ids = list(destination.sources.values_list("id", flat=True))
    if source_ids:
        clauses.append(f"{alias}.source_id = ANY(%s::bigint[])")
        params.append(source_ids)
    parents = [
        (column, ids)
        for column, ids in (
            ("campaign_id", destination.campaign_ids),
            ("broadcast_id", destination.broadcast_ids),
            ("newsletter_id", destination.newsletter_ids),
            ("transactional_message_id", destination.transactional_message_ids),
        )
        if ids
    ]
    if parents:
        clauses.append(
            "("
            + " OR ".join(f"{alias}.{column} = ANY(%s::bigint[])" for column, _ in parents)
            + ")"
        )
        params.extend(list(ids) for _, ids in parents)
    return (" AND ".join(clauses) or "TRUE"), params


def ledger_insert_sql(where: str) -> str:
    """INSERT ... SELECT of pending ledger rows for the events matching ``where``; the first
    parameter is the destination id. Existing rows are left alone."""
    return (
        f"INSERT INTO {DELIVERY} (destination_id, event_id, status, attempts, "  # noqa: S608
        "next_attempt_at, last_error, created_at, claimed_by) "
        f"SELECT %s, e.id, 'pending', 0, now(), '', now(), '' FROM {EVENT} e WHERE {where} "
        "ON CONFLICT (destination_id, event_id) DO NOTHING"
    )
