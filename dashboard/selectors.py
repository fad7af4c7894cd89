"""Reads for the dashboard: SQL over the summaries, returning plain data.

Time series and totals read the hourly counts (``metric_count``), never the raw events; one
delivery's page reads its own events through the delivery index. Every function takes the
request's Filters and runs one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from dashboard.failure_text import normalised_sql
from dashboard.filters import Filters
from dashboard.links import link_without_tracking_sql
from dashboard.moments import shown_moment
from dashboard.rates import MetricTotal, Totals
from metrics_source.forwarding.models import Delivery, Destination
from metrics_source.models import (
    ActionCount,
    DeliverySummary,
    Event,
    FailureCount,
    LinkCount,
    MessageName,
    MessageParent,
    MetricCount,
    Source,
    SummaryQueue,
)
from metrics_source.summaries.metrics import FIRST_TIMES

COUNTS = MetricCount._meta.db_table
ACTIONS = ActionCount._meta.db_table
FAILURES = FailureCount._meta.db_table
LINKS = LinkCount._meta.db_table
PARENTS = MessageParent._meta.db_table
NAMES = MessageName._meta.db_table
SUMMARY = DeliverySummary._meta.db_table
EVENTS = Event._meta.db_table
LEDGER = Delivery._meta.db_table
QUEUE = SummaryQueue._meta.db_table
DESTINATIONS = Destination._meta.db_table

_SUMS = "sum(events), sum(machine_events), sum(deliveries), sum(human_deliveries)"


def _rows(sql: str, params: list[Any]) -> list[tuple]:
    """Every row as a tuple; timestamps held where the pages can show them (see moments)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(shown_moment(value) for value in row) for row in cursor.fetchall()]


def _dicts(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Every row as a dict by column name; timestamps as in ``_rows``."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [
            {name: shown_moment(value) for name, value in zip(names, row, strict=True)}
            for row in cursor.fetchall()
        ]


def dimension_clauses(filters: Filters) -> tuple[list[str], list[Any]]:
    """The filters' channel, parent and source as clauses (and their parameters) over any
    table that has those columns: the counts and the delivery summaries."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.channel:
        clauses.append("channel = %s")
        params.append(filters.channel)
    if filters.parent_kind is not None:
        clauses += ["parent_kind = %s", "parent_id = %s"]
        params += [filters.parent_kind, filters.parent_id]
    if filters.source_id is not None:
        clauses.append("source_id = %s")
        params.append(filters.source_id)
    return clauses, params


def _where(
    filters: Filters, *, dimensions: bool = True, basis: bool = True
) -> tuple[str, list[Any]]:
    """The filters as a WHERE clause over a counts table (bucket, channel, parent, source)."""
    clauses = ["bucket >= %s", "bucket < %s"]
    params: list[Any] = [filters.start, filters.end]
    if basis:
        clauses.append("basis = %s")
        params.append(filters.basis_value)
    if dimensions:
        more, values = dimension_clauses(filters)
        clauses += more
        params += values
    return " AND ".join(clauses), params


def totals_by_channel(filters: Filters) -> dict[str, Totals]:
    """channel -> metric -> totals over the filters' period."""
    where, params = _where(filters)
    out: dict[str, Totals] = {}
    for channel, metric, *sums in _rows(
        f"SELECT channel, metric, {_SUMS} FROM {COUNTS} WHERE {where} GROUP BY 1, 2",
        params,
    ):
        out.setdefault(channel, {})[metric] = MetricTotal(*(int(v) for v in sums))
    return out


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: datetime  # the interval's start, in the display time zone
    metric: str
    deliveries: int
    events: int
    human_deliveries: int


def metric_series(filters: Filters) -> list[SeriesPoint]:
    """Totals per interval (hour, day or week in the display time zone) and metric."""
    where, params = _where(filters)
    rows = _rows(
        "SELECT date_trunc(%s, bucket AT TIME ZONE %s) AS t, metric, "
        "sum(deliveries), sum(events), sum(human_deliveries) "
        f"FROM {COUNTS} WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        [filters.interval, str(filters.time_zone), *params],
    )
    zone = filters.time_zone
    return [
        SeriesPoint(t.replace(tzinfo=zone), name, int(d), int(e), int(h))
        for t, name, d, e, h in rows
    ]


def series_and_totals(filters: Filters) -> tuple[list[SeriesPoint], dict[str, Totals]]:
    """``metric_series(filters)`` and ``totals_by_channel(filters)`` from one scan of the
    counts: per interval, channel and metric, summed up in Python (a few thousand rows)."""
    where, params = _where(filters)
    rows = _rows(
        f"SELECT date_trunc(%s, bucket AT TIME ZONE %s) AS t, channel, metric, {_SUMS} "
        f"FROM {COUNTS} WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 3",
        [filters.interval, str(filters.time_zone), *params],
    )
    zone = filters.time_zone
    by_metric: dict[tuple[datetime, str], list[int]] = {}
    by_channel: dict[str, dict[str, list[int]]] = {}
    for t, channel, metric, *sums in rows:
        values = [int(v) for v in sums]
        point = by_metric.setdefault((t, metric), [0, 0, 0])
        point[0] += values[2]  # deliveries
        point[1] += values[0]  # events
        point[2] += values[3]  # human deliveries
        total = by_channel.setdefault(channel, {}).setdefault(metric, [0, 0, 0, 0])
        for index, value in enumerate(values):
            total[index] += value
    points = [
        SeriesPoint(t.replace(tzinfo=zone), metric, d, e, h)
        for (t, metric), (d, e, h) in by_metric.items()
    ]
    totals = {
        channel: {metric: MetricTotal(*sums) for metric, sums in metrics.items()}
        for channel, metrics in by_channel.items()
    }
    return points, totals


# A parent's label: the name people gave it (metrics_source.naming), else its first subject.
_PARENT_COLUMNS = (
    "p.parent_kind, p.parent_id, COALESCE(n.name, p.label) AS label, p.channels, "
    "p.first_seen, p.last_seen"
)
_PARENT_NAMES = (
    f"{PARENTS} p LEFT JOIN {NAMES} n ON n.kind = p.parent_kind AND n.object_id = p.parent_id"
)


def parents(*, kinds: tuple[str, ...] | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """Every campaign, broadcast, newsletter and transactional message seen."""
    sql = f"SELECT {_PARENT_COLUMNS} FROM {_PARENT_NAMES}"
    params: list[Any] = []
    if kinds:
        sql += " WHERE p.parent_kind = ANY(%s)"
        params.append(list(kinds))
    return {(row["parent_kind"], row["parent_id"]): row for row in _dicts(sql, params)}


def parent_detail(kind: str, parent_id: int) -> dict[str, Any] | None:
    rows = _dicts(
        f"SELECT {_PARENT_COLUMNS} FROM {_PARENT_NAMES} "
        "WHERE p.parent_kind = %s AND p.parent_id = %s",
        [kind, parent_id],
    )
    return rows[0] if rows else None


def names_of(kind: str, ids: list[int]) -> dict[int, str]:
    """The names people gave to these ids of one kind (actions, journeys, ...)."""
    if not ids:
        return {}
    return dict(
        _rows(f"SELECT object_id, name FROM {NAMES} WHERE kind = %s AND object_id = ANY(%s)",
              [kind, ids])
    )  # fmt: skip


def totals_by_action(filters: Filters) -> list[dict[str, Any]]:
    """Per action (and channel) of one parent: unique deliveries reaching each metric in the
    period, on the filters' basis; busiest (most sent) first."""
    assert filters.parent_kind is not None
    clauses = ["parent_kind = %s", "parent_id = %s", "basis = %s", "bucket >= %s", "bucket < %s"]
    params: list[Any] = [
        filters.parent_kind,
        filters.parent_id,
        filters.basis_value,
        filters.start,
        filters.end,
    ]
    if filters.channel:
        clauses.append("channel = %s")
        params.append(filters.channel)
    if filters.source_id is not None:
        clauses.append("source_id = %s")
        params.append(filters.source_id)
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for action_id, channel, metric, deliveries in _rows(
        f"SELECT action_id, channel, metric, sum(deliveries) FROM {ACTIONS} "
        f"WHERE {' AND '.join(clauses)} GROUP BY 1, 2, 3",
        params,
    ):
        row = out.setdefault(
            (action_id, channel),
            {"action_id": action_id or None, "channel": channel}
            | {ft.column.removesuffix("_at"): 0 for ft in FIRST_TIMES},
        )
        row[metric] = int(deliveries)
    return sorted(out.values(), key=lambda row: (-row["sent"], row["action_id"] or 0))[:200]


def failure_messages(filters: Filters, *, limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent failure messages, with their metric and channel; messages that
    differ only in an address, id or number are one (dashboard/failure_text.py)."""
    where, params = _where(filters, basis=False)
    return _dicts(
        f"SELECT channel, metric, {normalised_sql('message')} AS message, sum(events) AS events "
        f"FROM {FAILURES} WHERE {where} GROUP BY 1, 2, 3 ORDER BY 4 DESC, 3 LIMIT %s",
        [*params, limit],
    )


def top_links(filters: Filters, *, limit: int = 10) -> list[dict[str, Any]]:
    """The most-clicked links (every click, and machine clicks apart), a link with and
    without tracking parameters (utm_*, click ids) counted as one."""
    where, params = _where(filters, basis=False)
    return _dicts(
        f"SELECT {link_without_tracking_sql('link')} AS link, sum(clicks) AS clicks, "
        f"sum(machine_clicks) AS machine_clicks "
        f"FROM {LINKS} WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s",
        [*params, limit],
    )


_SUMMARY_LIST_COLUMNS = (
    "delivery_id, channel, parent_kind, parent_id, action_id, person_id, recipient, subject, "
    "created_at, last_event_at, events, failure_message, "
    + ", ".join(ft.column for ft in FIRST_TIMES)
)


# A prefix shorter than this matches too much to be meant as one.
MIN_PREFIX = 4


def _like_prefix(text: str) -> str:
    """``text%`` for LIKE, with LIKE's own characters in ``text`` taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def deliveries_matching(text: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries whose id or person id is ``text`` or starts with it (from MIN_PREFIX
    characters), or whose recipient (an email) is ``text`` in any case; newest first. Each
    condition has its index (summary_delivery_prefix, summary_person_prefix,
    summary_recipient_lower)."""
    pattern = _like_prefix(text)
    if len(text) < MIN_PREFIX:
        pattern = pattern.removesuffix("%")  # the value itself only
    return _dicts(
        f"SELECT {_SUMMARY_LIST_COLUMNS} FROM {SUMMARY} WHERE delivery_id LIKE %s "
        f"UNION SELECT {_SUMMARY_LIST_COLUMNS} FROM {SUMMARY} WHERE person_id LIKE %s "
        f"UNION SELECT {_SUMMARY_LIST_COLUMNS} FROM {SUMMARY} WHERE lower(recipient) = lower(%s) "
        "ORDER BY created_at DESC, delivery_id LIMIT %s",
        [pattern, pattern, text, limit],
    )


def person_deliveries(person_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """All deliveries of one person across channels, newest first."""
    return _dicts(
        f"SELECT {_SUMMARY_LIST_COLUMNS} FROM {SUMMARY} WHERE person_id = %s "
        "ORDER BY created_at DESC, delivery_id LIMIT %s",
        [person_id, limit],
    )


def delivery_summary(delivery_id: str) -> dict[str, Any] | None:
    rows = _dicts(
        f"SELECT {_SUMMARY_LIST_COLUMNS}, source_id, opens, machine_opens, clicks, "
        f"machine_clicks FROM {SUMMARY} WHERE delivery_id = %s",
        [delivery_id],
    )
    return rows[0] if rows else None


def forwarding_status(event_ids: list[int]) -> list[dict[str, Any]]:
    """Each event's status at each destination (the forwarding ledger)."""
    if not event_ids:
        return []
    return _dicts(
        f"SELECT l.id, l.event_id, l.destination_id, d.name AS destination, l.status, "
        f"l.attempts, l.delivered_at, l.next_attempt_at, l.last_error "
        f"FROM {LEDGER} l JOIN {DESTINATIONS} d ON d.id = l.destination_id "
        "WHERE l.event_id = ANY(%s) ORDER BY l.event_id, d.name",
        [event_ids],
    )


def source_names() -> dict[int, str]:
    return dict(Source.objects.values_list("pk", "name"))


def first_activity(filters: Filters) -> datetime | None:
    """The first hour with any count on the filters' basis (None: nothing at all)."""
    rows = _rows(f"SELECT min(bucket) FROM {COUNTS} WHERE basis = %s", [filters.basis_value])
    return rows[0][0]


def has_events() -> bool:
    """Whether anything was ever summarised (for the first-run empty state)."""
    return MetricCount.objects.exists() or Event.objects.exists()


@dataclass(frozen=True, slots=True)
class Backlog:
    """Stored events the summaries (so every chart) do not count yet."""

    oldest_received_at: datetime
    events: int  # at most BACKLOG_COUNT_LIMIT
    capped: bool


# Counting a large queue exactly would cost more than the page; beyond this it says "more than".
BACKLOG_COUNT_LIMIT = 100_000


def summaries_backlog() -> Backlog | None:
    """The rollup's backlog: the oldest queued event's arrival and how many wait (None when
    nothing waits). One primary-key probe, and a count over at most the limit's queue rows
    (each holds one or more events)."""
    rows = _rows(
        f"SELECT e.received_at, (SELECT sum(cardinality(event_ids)) FROM "
        f"(SELECT event_ids FROM {QUEUE} LIMIT %s) AS q) "
        f"FROM {QUEUE} q JOIN {EVENTS} e ON e.id = q.event_ids[1] ORDER BY q.id LIMIT 1",
        [BACKLOG_COUNT_LIMIT + 1],
    )
    if not rows:
        return None
    received_at, events = rows[0]
    capped = events > BACKLOG_COUNT_LIMIT
    return Backlog(received_at, min(events, BACKLOG_COUNT_LIMIT), capped)
