"""Services that store events, each exactly once, and the size limits every way in shares.

Dedupe happens in PostgreSQL (a unique ``message_id`` and ``ON CONFLICT DO NOTHING``), never in
Python memory, so retries, overlapping batches and racing requests all end with one row. A batch
is one multi-row INSERT over column arrays (``unnest``): one round trip, one commit.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import transaction

from metrics_source.ingest import exact_json
from metrics_source.ingest.mapping import (
    EventRow,
    MappingError,
    row_from_call,
    row_from_track_event,
    track_event_from_webhook,
)
from metrics_source.models import Event, Origin, Source, SummaryQueue
from metrics_source.runtime.db import hot_path_rows
from metrics_source.runtime.wakeup import ingest_wakeup

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_WEBHOOK_BYTES = 1024 * 1024

# Calls that Segment-compatible SDKs send besides track: accepted and counted, not stored.
NON_METRIC_CALL_TYPES = frozenset({"identify", "page", "screen", "group", "alias"})


@dataclass(slots=True)
class Rejection:
    index: int
    message_id: str | None
    error: str


@dataclass(slots=True)
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    # The event name of each accepted (stored or duplicate) event, in input order.
    event_names: list[str] = field(default_factory=list)


# EventRow attribute -> (events table column, SQL type). JSON texts are cast to jsonb where
# the column is jsonb; `raw` is kept as the text it arrived as.
_COLUMNS = (
    ("message_id", "message_id", "text"),
    ("event", "event", "text"),
    ("channel", "channel", "text"),
    ("metric", "metric", "text"),
    ("semantic", "semantic", "boolean"),
    ("user_id", "user_id", "text"),
    ("anonymous_id", "anonymous_id", "text"),
    ("email", "email", "text"),
    ("delivery_id", "delivery_id", "text"),
    ("campaign_id", "campaign_id", "bigint"),
    ("broadcast_id", "broadcast_id", "bigint"),
    ("newsletter_id", "newsletter_id", "bigint"),
    ("transactional_message_id", "transactional_message_id", "bigint"),
    ("action_id", "action_id", "bigint"),
    ("journey_id", "journey_id", "text"),
    ("content_id", "content_id", "bigint"),
    ("trigger_id", "trigger_id", "bigint"),
    ("timestamp", "timestamp", "timestamptz"),
    ("original_timestamp", "original_timestamp", "timestamptz"),
    ("sent_at", "sent_at", "timestamptz"),
    ("received_at", "received_at", "timestamptz"),
    ("properties_json", "properties", "jsonb"),
    ("context_json", "context", "jsonb"),
    ("raw_json", "raw", "text"),
    ("integrations_json", "integrations", "jsonb"),
)
_ATTRIBUTES = [attribute for attribute, _, _ in _COLUMNS]
# One row's values in column order, read in C: cheaper than a Python getattr per cell.
_ROW_VALUES = operator.attrgetter(*_ATTRIBUTES)
# The events table's columns an ingest statement writes, in the order of ``row_values``.
STORED_COLUMNS = ("source_id", "origin", *(column for _, column, _ in _COLUMNS))


def row_values(row: EventRow, *, source: Source | None, origin: Origin) -> tuple[Any, ...]:
    """One row's values for ``STORED_COLUMNS`` (the ingest bench copies rows with them)."""
    return (source.pk if source else None, origin.value, *_ROW_VALUES(row))


_MESSAGE_ID = operator.attrgetter("message_id")
_TARGET = f"INSERT INTO {Event._meta.db_table} (" + ", ".join(STORED_COLUMNS)
_ON_CONFLICT = " ON CONFLICT (message_id) DO NOTHING RETURNING message_id, id"
# The events stored go on the summary queue, in the same statement (so the same transaction),
# as one row holding their ids: the dashboard's rollup then counts each new event exactly once.
_QUEUE_HEAD = "WITH stored AS ("
_QUEUE_TAIL = (
    f"), queued AS (INSERT INTO {SummaryQueue._meta.db_table} (event_ids) "
    "SELECT array_agg(id) FROM stored HAVING count(*) > 0) SELECT message_id, id FROM stored"
)

# Many rows: one array per column, expanded by unnest (binary arrays: no quoting in Python).
_INSERT_MANY_SQL = (
    _QUEUE_HEAD
    + _TARGET
    + ") SELECT %s, %s, "
    + ", ".join(f"c{i}::jsonb" if t == "jsonb" else f"c{i}" for i, (_, _, t) in enumerate(_COLUMNS))
    + " FROM unnest("
    + ", ".join(f"%b::{'text' if t == 'jsonb' else t}[]" for _, _, t in _COLUMNS)
    + ") AS t("
    + ", ".join(f"c{i}" for i in range(len(_COLUMNS)))
    + ")"
    + _ON_CONFLICT
    + _QUEUE_TAIL
)
# One row (the tracking API's /v1/track, each webhook): plain parameters cost far less to
# encode than 24 one-element arrays.
_INSERT_ONE_SQL = (
    _QUEUE_HEAD
    + _TARGET
    + ") VALUES (%s, %s, "
    + ", ".join("%s::jsonb" if t == "jsonb" else "%s" for _, _, t in _COLUMNS)
    + ")"
    + _ON_CONFLICT
    + _QUEUE_TAIL
)


def events_store(*, rows: list[EventRow], source: Source | None, origin: Origin) -> dict[str, int]:
    """Insert rows that are new; return message_id -> id for those stored by this call.

    Rows are sorted by message_id so two transactions inserting overlapping batches take their
    unique-index locks in the same order and cannot deadlock. The statement is prepared once per
    connection, so PostgreSQL does not plan it again on every request.
    """
    if not rows:
        return {}
    head = [source.pk if source else None, origin.value]
    if len(rows) == 1:
        sql, params = _INSERT_ONE_SQL, head + list(_ROW_VALUES(rows[0]))
    else:
        rows = sorted(rows, key=_MESSAGE_ID)
        # Transposed: one list per column (psycopg sends lists, not tuples, as arrays).
        columns = zip(*map(_ROW_VALUES, rows), strict=True)
        sql, params = _INSERT_MANY_SQL, head + [list(column) for column in columns]
    # Safe to run twice (hot_path_rows retries once on a lost connection): a row the first
    # run stored is a duplicate the second time.
    stored = dict(hot_path_rows(sql, params))
    if stored:
        # Forwarding and the rollup take new events in bulk; this only nudges them (throttled,
        # never fails).
        transaction.on_commit(ingest_wakeup)
    return stored


def _record(result: IngestResult, rows: list[EventRow], stored: dict[str, int]) -> None:
    # RETURNING lists only the rows this statement inserted, each messageId once; every other
    # row (a repeat inside the batch, or one already stored) is a duplicate.
    result.stored += len(stored)
    result.duplicates += len(rows) - len(stored)


# Keys of a call that hold a credential rather than event data.
CREDENTIAL_KEYS = frozenset({"writeKey", "write_key"})


def _raw_json(item: Any, *, limit: int | None = None) -> str:
    """The item as JSON text; over ``limit`` bytes of UTF-8 it is rejected (the limit is in
    bytes, as the body's is: an event of 20,000 "é" is 40 KB, not 20)."""
    try:
        data = exact_json.dumps(item)
    except orjson.JSONEncodeError as error:  # e.g. nested deeper than orjson writes (254)
        raise MappingError(f"the event cannot be stored as JSON: {error}") from None
    if limit is not None and len(data) > limit:
        raise MappingError(f"the event is larger than {limit // 1024} KB")
    return data.decode()


def events_ingest_calls(
    *,
    source: Source | None,
    calls: list[Any],
    origin: Origin = Origin.TRACK,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
    received_at: datetime | None = None,
    first_index: int = 0,
) -> IngestResult:
    """Store the track calls of a request (or import chunk); count the other call types.

    Invalid calls are rejected one by one with a reason; the valid ones are stored regardless.
    """
    received_at = received_at or datetime.now(UTC)
    result = IngestResult(received=len(calls))
    rows: list[EventRow] = []
    for offset, call in enumerate(calls):
        index = first_index + offset
        message_id = call.get("messageId") if isinstance(call, dict) else None
        message_id = message_id if isinstance(message_id, str) else None
        if not isinstance(call, dict):
            result.rejected.append(Rejection(index, None, "each call must be a JSON object"))
            continue
        call_type = call.get("type", "track")
        # isinstance first: an unhashable "type" (a list, an object) must be rejected below,
        # not raise on the set lookup.
        if isinstance(call_type, str) and call_type in NON_METRIC_CALL_TYPES:
            result.ignored[call_type] += 1
            continue
        if CREDENTIAL_KEYS.intersection(call):
            # A call may carry its source's write key (SDKs that authenticate in the body):
            # it authenticated the request and is never stored, in ``raw`` or anywhere.
            call = {key: value for key, value in call.items() if key not in CREDENTIAL_KEYS}
        try:
            raw = _raw_json(call, limit=MAX_EVENT_BYTES)
            event_type, row = row_from_call(
                call,
                received_at=received_at,
                raw_json=raw,
                batch_context=batch_context,
                batch_integrations=batch_integrations,
                batch_sent_at=batch_sent_at,
            )
            rows.append(row)
            result.event_names.append(event_type.name)
        except MappingError as error:
            result.rejected.append(Rejection(index, message_id, str(error)))
    _record(result, rows, events_store(rows=rows, source=source, origin=origin))
    return result


def events_ingest_webhooks(
    *,
    source: Source | None,
    payloads: list[Any],
    origin: Origin = Origin.WEBHOOK,
    sent_at: datetime | None = None,
    received_at: datetime | None = None,
    first_index: int = 0,
) -> IngestResult:
    """Map Customer.io reporting-webhook payloads to semantic events and store them."""
    received_at = received_at or datetime.now(UTC)
    result = IngestResult(received=len(payloads))
    rows: list[EventRow] = []
    for offset, payload in enumerate(payloads):
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        try:
            event_type, event = track_event_from_webhook(payload, sent_at=sent_at)
            rows.append(
                row_from_track_event(
                    event_type, event, received_at=received_at, raw_json=_raw_json(payload)
                )
            )
            result.event_names.append(event_type.name)
        except MappingError as error:
            message_id = event_id if isinstance(event_id, str) else None
            result.rejected.append(Rejection(first_index + offset, message_id, str(error)))
    _record(result, rows, events_store(rows=rows, source=source, origin=origin))
    return result
