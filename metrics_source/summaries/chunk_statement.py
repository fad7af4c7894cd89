"""The one statement that summarises a chunk of queued events.

Built once at import from the models' tables and the metric definitions: it claims queue rows,
reads their events (``rollup_chunk``), and in the same snapshot updates the delivery summaries
and the hourly, per-action, failure, link and parent counts (see ``rollup`` for how unique
counts are kept by difference). ``rollup`` runs it, a chunk per transaction, under its lock.
"""

from __future__ import annotations

from metrics_source.models import Event
from metrics_source.summaries.metrics import FAILURE_METRICS, FIRST_TIMES, Basis, ParentKind
from metrics_source.summaries.models import (
    ActionCount,
    DeliverySummary,
    FailureCount,
    LinkCount,
    MessageParent,
    MetricCount,
    SummaryQueue,
)

EVENTS = Event._meta.db_table
QUEUE = SummaryQueue._meta.db_table
SUMMARY = DeliverySummary._meta.db_table
COUNTS = MetricCount._meta.db_table
ACTIONS = ActionCount._meta.db_table
FAILURES = FailureCount._meta.db_table
LINKS = LinkCount._meta.db_table
PARENTS = MessageParent._meta.db_table

_PARENT_KIND_SQL = (
    "CASE "
    + " ".join(f"WHEN e.{column} IS NOT NULL THEN '{kind}'" for column, kind in ParentKind.COLUMNS)
    + " ELSE '' END"
)
_PARENT_ID_SQL = "COALESCE(" + ", ".join(f"e.{column}" for column, _ in ParentKind.COLUMNS) + ", 0)"
# Opens flagged prefetched/proxied and clicks flagged machine; ->> reads true and "true" alike.
_MACHINE_SQL = (
    "COALESCE(e.properties->>'prefetched' = 'true' OR e.properties->>'proxied' = 'true' "
    "OR e.properties->>'machine' = 'true', false)"
)

# An event marked as a test: ``"test": true`` in its properties, as the forwarding's "Send a
# test event" sends it (metrics_source/forwarding/probe.py), so a metrics-source receiving
# another's test events leaves them out of its numbers too.
TEST_EVENT_SQL = "COALESCE(e.properties->>'test' = 'true', false)"

# The chunk: events claimed from the queue, with what the summaries need derived once.
_CHUNK_CTES = f"""
-- Queue rows in order, each holding the ids one ingest statement stored, until they hold the
-- chunk's number of events (the last row may take it past that).
claimed AS (
    DELETE FROM {QUEUE} WHERE id IN (
        SELECT id FROM (
            SELECT id, sum(cardinality(event_ids)) OVER (ORDER BY id) - cardinality(event_ids)
                   AS before
            FROM {QUEUE} WHERE id > %(after)s ORDER BY id LIMIT %(limit)s
        ) AS q
        WHERE before < %(limit)s
    ) RETURNING id, event_ids
),
rollup_chunk AS MATERIALIZED (
SELECT e.id, COALESCE(e.source_id, 0) AS source_id, e.channel, e.metric, e.timestamp AS ts,
       e.delivery_id, {_PARENT_KIND_SQL} AS parent_kind, {_PARENT_ID_SQL} AS parent_id,
       e.action_id, COALESCE(e.user_id, e.anonymous_id) AS person_id,
       left(COALESCE(e.properties->>'recipient', e.email), 320) AS recipient,
       left(e.properties->>'subject', 300) AS subject,
       left(COALESCE(e.properties->>'failure_message',
                     e.properties#>>'{{recipients,0,failure_message}}'), 500) AS failure_message,
       left(e.properties->>'href', 500) AS href,
       {_MACHINE_SQL} AS machine
FROM {EVENTS} e
-- = ANY(ARRAY(...)): primary-key lookups, never a scan of the events table.
WHERE e.id = ANY(ARRAY(SELECT unnest(event_ids) FROM claimed))
  -- Test events ("Send a test event" marks its own) are stored and shown on their delivery's
  -- timeline, but no summary counts them: every chart leaves them out.
  AND NOT {TEST_EVENT_SQL}
)"""


def _first_of(values: str, order: str = "ts") -> str:
    """The value of the chunk's earliest event that has one."""
    return f"(array_agg({values} ORDER BY {order}) FILTER (WHERE {values} IS NOT NULL))[1]"


def _first_time_aggregate(metric: str, human: bool) -> str:
    condition = f"metric = '{metric}'" + (" AND NOT machine" if human else "")
    return f"min(ts) FILTER (WHERE {condition})"


_FT_COLUMNS = [ft.column for ft in FIRST_TIMES]
_SUMMARY_COLUMNS = [
    "delivery_id",
    "source_id",
    "channel",
    "parent_kind",
    "parent_id",
    "action_id",
    "person_id",
    "recipient",
    "subject",
    "failure_message",
    "created_at",
    "last_event_at",
    "events",
    "opens",
    "machine_opens",
    "clicks",
    "machine_clicks",
    *_FT_COLUMNS,
]
_SUMMARY_EXPRESSIONS = [
    "delivery_id",
    # A delivery's events all name the same source, channel, parent, action, person,
    # recipient and subject; min() is the cheap way to take that one value (and a stable
    # choice should they ever disagree). The parent id is taken from events naming a kind.
    "min(source_id)",
    "min(channel)",
    "COALESCE(min(parent_kind) FILTER (WHERE parent_kind <> ''), '')",
    "COALESCE(min(parent_id) FILTER (WHERE parent_kind <> ''), 0)",
    "min(action_id)",
    "min(person_id)",
    "min(recipient)",
    "min(subject)",
    # Failures differ (deferred, then bounced): the earliest one's reason.
    _first_of("failure_message"),
    "min(ts)",
    "max(ts)",
    "count(*)",
    "count(*) FILTER (WHERE metric = 'opened')",
    "count(*) FILTER (WHERE metric = 'opened' AND machine)",
    "count(*) FILTER (WHERE metric = 'clicked')",
    "count(*) FILTER (WHERE metric = 'clicked' AND machine)",
    *(_first_time_aggregate(ft.metric.value, ft.human) for ft in FIRST_TIMES),
]
# Each named as its column: the update reads them by name, the insert in this order.
_SUMMARY_SELECT = ",\n       ".join(
    f"{expression} AS {column}"
    for expression, column in zip(_SUMMARY_EXPRESSIONS, _SUMMARY_COLUMNS, strict=True)
)
_KEEP_FIRST = ("action_id", "person_id", "recipient", "subject", "failure_message")
_ADD = ("events", "opens", "machine_opens", "clicks", "machine_clicks")
_SUMMARY_UPDATE = ",\n    ".join(
    [
        # A delivery keeps the parent it was first seen with, unless it had none.
        "parent_kind = CASE WHEN s.parent_kind = '' THEN EXCLUDED.parent_kind "
        "ELSE s.parent_kind END",
        "parent_id = CASE WHEN s.parent_kind = '' THEN EXCLUDED.parent_id ELSE s.parent_id END",
        *(f"{c} = COALESCE(s.{c}, EXCLUDED.{c})" for c in _KEEP_FIRST),
        "created_at = LEAST(s.created_at, EXCLUDED.created_at)",
        "last_event_at = GREATEST(s.last_event_at, EXCLUDED.last_event_at)",
        *(f"{c} = s.{c} + EXCLUDED.{c}" for c in _ADD),
        # LEAST ignores NULLs: the earliest time seen so far, whichever chunk brought it.
        *(f"{c} = LEAST(s.{c}, EXCLUDED.{c})" for c in _FT_COLUMNS),
    ]
)

# One row per (first time, metric, human?) of a summary row `c`, for the unpivot below.
_UNPIVOT = (
    "CROSS JOIN LATERAL (VALUES "
    + ", ".join(
        f"('{ft.metric.value}', c.{ft.column}, {'true' if ft.human else 'false'})"
        for ft in FIRST_TIMES
    )
    + ") AS v(metric, at, human)"
)
_KEY = "basis, bucket, channel, metric, parent_kind, parent_id, source_id"
_ACTION_KEY = "parent_kind, parent_id, basis, bucket, action_id, channel, metric, source_id"
_COHORT_EVENTS = "CASE r.metric WHEN 'opened' THEN r.opens WHEN 'clicked' THEN r.clicks ELSE 1 END"
_COHORT_MACHINE = (
    "CASE r.metric WHEN 'opened' THEN r.machine_opens "
    "WHEN 'clicked' THEN r.machine_clicks ELSE 0 END"
)

# Summaries and counts in one statement: every CTE sees the same snapshot, so `old` is each
# summary row before the insert or update and `new` the row after it.
_SUMMARISE_CTES = f"""
old AS (
    -- = ANY(ARRAY(...)): primary-key lookups, never a scan of the whole summary table.
    SELECT s.* FROM {SUMMARY} s
    WHERE s.delivery_id = ANY(ARRAY(
        SELECT DISTINCT delivery_id FROM rollup_chunk WHERE delivery_id IS NOT NULL
    ))
),
chunk_summary AS MATERIALIZED (
    SELECT {_SUMMARY_SELECT}
    FROM rollup_chunk WHERE delivery_id IS NOT NULL
    GROUP BY delivery_id
),
-- The rollup is the summaries' only writer, one at a time under its lock, so `old` tells which
-- deliveries are new: those are plain inserts (ON CONFLICT would first look each one up in the
-- primary key and insert it speculatively) and the others plain updates.
inserted AS (
    INSERT INTO {SUMMARY} ({", ".join(_SUMMARY_COLUMNS)})
    SELECT * FROM chunk_summary c
    WHERE NOT EXISTS (SELECT FROM old WHERE old.delivery_id = c.delivery_id)
    ORDER BY delivery_id
    RETURNING *
),
updated AS (
    UPDATE {SUMMARY} AS s SET
    {_SUMMARY_UPDATE}
    FROM chunk_summary AS excluded
    WHERE s.delivery_id = excluded.delivery_id
      AND s.delivery_id = ANY(ARRAY(SELECT delivery_id FROM old))
    RETURNING s.*
),
new AS (
    SELECT * FROM inserted UNION ALL SELECT * FROM updated
),
contributions AS (
    SELECT -1 AS sign, * FROM old
    UNION ALL
    SELECT 1 AS sign, * FROM new
),
-- Each contribution's first times, unpivoted once (before the two bases double the rows).
reached AS MATERIALIZED (
    SELECT c.sign, c.channel, c.parent_kind, c.parent_id, c.source_id, c.action_id, c.sent_at,
           c.created_at, c.opens, c.machine_opens, c.clicks, c.machine_clicks,
           v.metric, v.at, v.human
    FROM contributions c {_UNPIVOT}
    WHERE v.at IS NOT NULL
),
deltas AS (
    -- Unique deliveries in the hour each metric was first reached (event basis) and, for the
    -- send-date cohort, in the hour they were sent (or first seen), with the cohort's event
    -- counts. Both bases from one unpivot of each contribution.
    SELECT b.basis,
           date_trunc('hour', CASE WHEN b.basis = {Basis.EVENT} THEN r.at
                                   ELSE COALESCE(r.sent_at, r.created_at) END) AS bucket,
           r.channel, r.metric, r.parent_kind, r.parent_id, r.source_id,
           COALESCE(r.action_id, 0) AS action_id,
           CASE WHEN b.basis = {Basis.EVENT} OR r.human THEN 0
                ELSE r.sign * {_COHORT_EVENTS} END AS events,
           CASE WHEN b.basis = {Basis.EVENT} OR r.human THEN 0
                ELSE r.sign * {_COHORT_MACHINE} END AS machine_events,
           CASE WHEN r.human THEN 0 ELSE r.sign END AS deliveries,
           CASE WHEN r.human THEN r.sign ELSE 0 END AS human_deliveries
    FROM reached r
    CROSS JOIN (VALUES ({Basis.EVENT}), ({Basis.SENT})) AS b(basis)
    UNION ALL
    -- Every event, in its own hour; an event without a delivery is its own unit.
    SELECT b.basis, date_trunc('hour', ts), channel, metric, parent_kind, parent_id, source_id,
           COALESCE(action_id, 0),
           CASE WHEN b.basis = {Basis.EVENT} OR delivery_id IS NULL THEN 1 ELSE 0 END,
           CASE WHEN (b.basis = {Basis.EVENT} OR delivery_id IS NULL) AND machine
                THEN 1 ELSE 0 END,
           CASE WHEN delivery_id IS NULL THEN 1 ELSE 0 END,
           CASE WHEN delivery_id IS NULL AND NOT machine THEN 1 ELSE 0 END
    FROM rollup_chunk
    CROSS JOIN (VALUES ({Basis.EVENT}), ({Basis.SENT})) AS b(basis)
    WHERE b.basis = {Basis.EVENT} OR delivery_id IS NULL
),
-- Summed apart from the ordering (hash aggregation), then sorted: only the few summed rows.
summed AS MATERIALIZED (
    SELECT {_KEY}, sum(events) AS events, sum(machine_events) AS machine_events,
           sum(deliveries) AS deliveries, sum(human_deliveries) AS human_deliveries
    FROM deltas
    GROUP BY {_KEY}
    HAVING sum(events) <> 0 OR sum(machine_events) <> 0 OR sum(deliveries) <> 0
        OR sum(human_deliveries) <> 0
),
-- Unique deliveries by action, for deliveries with a parent (the per-action breakdown).
action_summed AS MATERIALIZED (
    SELECT {_ACTION_KEY}, sum(deliveries) AS deliveries, sum(human_deliveries) AS human_deliveries
    FROM deltas
    WHERE parent_kind <> '' AND (deliveries <> 0 OR human_deliveries <> 0)
    GROUP BY {_ACTION_KEY}
    HAVING sum(deliveries) <> 0 OR sum(human_deliveries) <> 0
),
action_counted AS (
INSERT INTO {ACTIONS} AS a ({_ACTION_KEY}, deliveries, human_deliveries)
SELECT {_ACTION_KEY}, deliveries, human_deliveries
FROM action_summed
ORDER BY {_ACTION_KEY}
ON CONFLICT ({_ACTION_KEY}) DO UPDATE SET
    deliveries = a.deliveries + EXCLUDED.deliveries,
    human_deliveries = a.human_deliveries + EXCLUDED.human_deliveries
),
counted AS (
INSERT INTO {COUNTS} AS m ({_KEY}, events, machine_events, deliveries, human_deliveries)
SELECT {_KEY}, events, machine_events, deliveries, human_deliveries
FROM summed
ORDER BY {_KEY}
ON CONFLICT ({_KEY}) DO UPDATE SET
    events = m.events + EXCLUDED.events,
    machine_events = m.machine_events + EXCLUDED.machine_events,
    deliveries = m.deliveries + EXCLUDED.deliveries,
    human_deliveries = m.human_deliveries + EXCLUDED.human_deliveries
)"""

_FAILURE_KEY = "bucket, channel, metric, parent_kind, parent_id, source_id, message"
_FAILURES_CTE = f"""
failed AS (
INSERT INTO {FAILURES} AS f ({_FAILURE_KEY}, events)
SELECT date_trunc('hour', ts), channel, metric, parent_kind, parent_id, source_id,
       left(failure_message, 300), count(*)
FROM rollup_chunk
WHERE failure_message IS NOT NULL AND failure_message <> ''
  AND metric IN ({", ".join(f"'{m.value}'" for m in FAILURE_METRICS)})
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT ({_FAILURE_KEY}) DO UPDATE SET events = f.events + EXCLUDED.events
)"""

_LINK_KEY = "bucket, channel, parent_kind, parent_id, source_id, link"
_LINKS_CTE = f"""
linked AS (
INSERT INTO {LINKS} AS l ({_LINK_KEY}, clicks, machine_clicks)
SELECT date_trunc('hour', ts), channel, parent_kind, parent_id, source_id, href,
       count(*), count(*) FILTER (WHERE machine)
FROM rollup_chunk
WHERE metric = 'clicked' AND href IS NOT NULL AND href <> ''
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT ({_LINK_KEY}) DO UPDATE SET
    clicks = l.clicks + EXCLUDED.clicks, machine_clicks = l.machine_clicks + EXCLUDED.machine_clicks
)"""

_PARENTS_CTE = f"""
parented AS (
INSERT INTO {PARENTS} AS p (parent_kind, parent_id, label, channels, first_seen, last_seen)
SELECT parent_kind, parent_id, COALESCE({_first_of("subject")}, ''),
       array_agg(DISTINCT channel ORDER BY channel), min(ts), max(ts)
FROM rollup_chunk
WHERE parent_kind <> ''
GROUP BY parent_kind, parent_id
ORDER BY parent_kind, parent_id
ON CONFLICT (parent_kind, parent_id) DO UPDATE SET
    label = CASE WHEN p.label = '' THEN EXCLUDED.label ELSE p.label END,
    channels = ARRAY(SELECT DISTINCT unnest(p.channels || EXCLUDED.channels) ORDER BY 1),
    first_seen = LEAST(p.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(p.last_seen, EXCLUDED.last_seen)
)"""

# One chunk, one statement. Data-modifying CTEs always run to completion; a single statement
# also means no scratch table, whose creation would make every other session of the database
# drop its cached plans (catalog invalidations), ingest's prepared statements included.
CHUNK_SQL = (
    "WITH "
    + ",\n".join([_CHUNK_CTES, _SUMMARISE_CTES, _FAILURES_CTE, _LINKS_CTE, _PARENTS_CTE])
    + "\nSELECT (SELECT count(*) FROM rollup_chunk), (SELECT max(id) FROM claimed)"
)
