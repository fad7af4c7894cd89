"""The rollup: turns queued events into delivery summaries and hourly counts.

Ingest stays one statement per request: it only adds the ids of the events it stored to
``summary_queue``, one row per statement. This service takes queue rows in chunks and, in one
statement (and transaction) per chunk, deletes them and applies their events to the summaries,
so every stored event is counted exactly once however it arrived (twice, out of order,
concurrently).

One rollup runs at a time (an advisory lock): counts of unique deliveries depend on what a
delivery had reached before, and one writer at a time makes that a plain read.

Unique counts are kept by difference. For the deliveries of a chunk, the statement reads their
summary rows before the update (``old``) and gets them back after it (``new``); each row
contributes +1 to (the hour it first reached a metric, that metric) and, for the send-date
cohort, to (the hour it was sent, that metric). Adding new's contributions and subtracting
old's moves a delivery's count to the right hour when an earlier event arrives late, and
leaves everything else unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connection, transaction

from metrics_source.runtime.db import hot_path_cursor
from metrics_source.summaries.chunk_statement import (
    ACTIONS,
    CHUNK_SQL,
    COUNTS,
    EVENTS,
    FAILURES,
    LINKS,
    PARENTS,
    QUEUE,
    SUMMARY,
)
from metrics_source.summaries.models import SummaryQueue

ROLLUP_LOCK = 0x53554D4D  # "SUMM": the advisory lock key that keeps rollups one at a time
CHUNK_EVENTS = 20000


@dataclass(slots=True)
class RollupResult:
    events: int = 0
    chunks: int = 0
    # False when another rollup held the lock: it will take these events.
    ran: bool = True


def summaries_apply_chunk(
    *, after_queue_id: int = 0, limit: int = CHUNK_EVENTS
) -> tuple[int, int | None]:
    """Summarise one chunk of about ``limit`` queued events (from queue rows after
    ``after_queue_id``) in the caller's transaction, which holds the rollup lock (the statement
    counts on being the summaries' only writer). Returns how many events it took and the last
    queue row it took (None: none queued)."""
    # Prepared once per connection: planning this statement costs more than a small chunk.
    with hot_path_cursor() as cursor:
        cursor.execute(CHUNK_SQL, {"after": after_queue_id, "limit": limit}, prepare=True)
        row = cursor.fetchone()
        assert row is not None
        taken, last_id = row
    return taken, last_id


def summaries_catch_up(
    *, chunk_events: int = CHUNK_EVENTS, time_budget: float | None = None
) -> RollupResult:
    """Summarise queued events until the queue holds less than a chunk (or the time budget
    is spent).

    Each chunk is its own transaction holding the rollup lock; a rollup already running
    elsewhere makes this one return at once (``ran=False``): that one takes the events.
    """
    result = _catch_up(chunk_events=chunk_events, time_budget=time_budget)
    if result.events >= ANALYZE_AFTER_EVENTS:
        summaries_analyze()
    return result


def _catch_up(*, chunk_events: int, time_budget: float | None) -> RollupResult:
    result = RollupResult()
    deadline = None if time_budget is None else time.monotonic() + time_budget
    after = 0
    while deadline is None or time.monotonic() < deadline:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK])
                if not cursor.fetchone()[0]:
                    result.ran = result.chunks > 0
                    return result
            taken, last_id = summaries_apply_chunk(after_queue_id=after, limit=chunk_events)
        if last_id is None:
            if after == 0:
                return result
            # Within a pass, queue rows are claimed in increasing id order (no rescan of the
            # queue's dead rows); a row committed meanwhile with a lower id waits for one more
            # pass from the start, which ends the loop when it finds nothing.
            after = 0
            continue
        result.events += taken
        result.chunks += 1
        after = last_id
        if taken < chunk_events:
            # The queue held less than a chunk: caught up. Events arriving meanwhile (or
            # committed late with lower ids) wait for the next run, woken by ingest or beat,
            # which starts from the lowest id again; so a steady trickle is summarised in a
            # few statements a second rather than by a busy loop of tiny ones.
            return result
    return result


# After a run this large the planner's statistics of the summaries are stale until autovacuum
# gets to them; a bulk load (demo data, a rebuild) refreshes them at once.
ANALYZE_AFTER_EVENTS = 100_000


def summaries_analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {SUMMARY}, {COUNTS}, {ACTIONS}, {FAILURES}, {LINKS}, {PARENTS}")


def summaries_pending() -> bool:
    """Whether any stored event still waits for the rollup."""
    return SummaryQueue.objects.exists()


def summaries_requeue_all() -> int:
    """Empty every summary and queue every stored event again (in the caller's transaction,
    under the rollup lock, so no rollup sees half of it). Returns how many were queued."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        cursor.execute(
            f"TRUNCATE {SUMMARY}, {COUNTS}, {ACTIONS}, {FAILURES}, {LINKS}, {PARENTS}, {QUEUE}"
        )
        # Queue rows of a thousand events, in id order.
        cursor.execute(
            f"WITH queued AS (INSERT INTO {QUEUE} (event_ids) "
            f"SELECT array_agg(id ORDER BY id) FROM {EVENTS} "
            "GROUP BY id / 1000 ORDER BY id / 1000 RETURNING cardinality(event_ids) AS events) "
            "SELECT COALESCE(sum(events), 0) FROM queued"
        )
        return int(cursor.fetchone()[0])
