"""Replays too large for one request: a ReplayJob row in PostgreSQL, worked through in chunks
of ids by Celery tasks (or by the forward_replay command itself), with its progress on the row.

Each chunk is one transaction that locks the job row, replays the chunk and advances the
cursor: two tasks running the same job (a lease that expired under a slow chunk) take turns
and never replay a chunk twice, and a killed worker loses only its uncommitted chunk. The
forwarding sweep enqueues every unfinished job whose lease has expired, so a lost task or a
killed worker delays a replay but never drops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from metrics_source.forwarding.models import (
    Destination,
    ReplayJob,
    ReplayScope,
    ReplayState,
)
from metrics_source.forwarding.replay import CHUNK_IDS, RESET_SQL
from metrics_source.forwarding.sql import DELIVERY, EVENT, destination_filter_sql

JOB = ReplayJob._meta.db_table


def _lease_seconds() -> float:
    # A task works FORWARDING_TASK_SECONDS, then hands over; the margin covers the last chunk.
    return settings.FORWARDING_TASK_SECONDS + settings.FORWARDING_CLAIM_MARGIN_SECONDS


def replay_job_create(
    *,
    destination_id: int,
    scope: ReplayScope | str,
    since: datetime | None = None,
    until: datetime | None = None,
    requested_by: str = "",
    chunk_ids: int = CHUNK_IDS,
) -> ReplayJob:
    """A queued replay; the forwarding sweep (or replay_job_run) works it through."""
    if scope == ReplayScope.DEAD and (since or until):
        raise ValueError("a replay of dead deliveries takes no time range")
    return ReplayJob.objects.create(
        destination_id=destination_id,
        scope=scope,
        since=since,
        until=until,
        requested_by=requested_by[:150],
        chunk_ids=chunk_ids,
    )


def replay_jobs_due() -> list[int]:
    """Unfinished jobs that no task holds or waits for; marks them enqueued (a conditional
    UPDATE, so two sweeps never enqueue the same job twice)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {JOB} SET queued_until = now() + make_interval(secs => %s) "  # noqa: S608
            "WHERE state IN ('queued', 'running') "
            "AND (queued_until IS NULL OR queued_until < now()) "
            "AND (lease_until IS NULL OR lease_until < now()) RETURNING id",
            [settings.FORWARDING_REQUEUE_SECONDS],
        )
        return [row[0] for row in cursor.fetchall()]


def _lease(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {JOB} SET lease_until = now() + make_interval(secs => %s), "  # noqa: S608
            "queued_until = NULL WHERE id = %s AND state IN ('queued', 'running') "
            "AND (lease_until IS NULL OR lease_until < now()) RETURNING id",
            [_lease_seconds(), job_id],
        )
        return cursor.fetchone() is not None


def _events_condition(job: ReplayJob) -> tuple[str, list]:
    destination = Destination.objects.get(pk=job.destination_id)
    where, params = destination_filter_sql(destination)
    clauses, params = [where], list(params)
    if job.since is not None:
        clauses.append("e.timestamp >= %s")
        params.append(job.since)
    if job.until is not None:
        clauses.append("e.timestamp < %s")
        params.append(job.until)
    return " AND ".join(clauses), params


def _measure(job: ReplayJob, condition: str, params: list) -> None:
    """Fix the id range and count what matches (the one scan of the whole range)."""
    with connection.cursor() as cursor:
        if job.scope == ReplayScope.DEAD:
            cursor.execute(
                f"SELECT min(id), max(id), count(*) FROM {DELIVERY} "  # noqa: S608
                "WHERE destination_id = %s AND status = 'dead'",
                [job.destination_id],
            )
        else:
            cursor.execute(
                f"SELECT min(e.id), max(e.id), count(*) FROM {EVENT} e WHERE {condition}",  # noqa: S608
                params,
            )
        low, high, count = cursor.fetchone()
    job.low_id, job.high_id, job.next_id, job.total = low, high, low, count
    job.state = ReplayState.RUNNING
    job.started_at = job.started_at or timezone.now()
    fields = ["low_id", "high_id", "next_id", "total", "state", "started_at"]
    if low is None:
        job.state, job.finished_at = ReplayState.DONE, timezone.now()
        fields += ["finished_at"]
    job.save(update_fields=fields)


def _chunk_sql(job: ReplayJob, condition: str) -> str:
    """One chunk: (rows matched, ledger rows made pending). Rows being sent right now are
    left alone: they end delivered or failed by themselves."""
    if job.scope == ReplayScope.DEAD:
        return (
            f"WITH matched AS (SELECT id FROM {DELIVERY} WHERE destination_id = %s "  # noqa: S608
            "AND status = 'dead' AND id >= %s AND id < %s), "
            f"changed AS (UPDATE {DELIVERY} d SET {RESET_SQL} FROM matched m "
            "WHERE d.id = m.id RETURNING 1) "
            "SELECT (SELECT count(*) FROM matched), (SELECT count(*) FROM changed)"
        )
    return (
        f"WITH matched AS (SELECT e.id FROM {EVENT} e WHERE e.id >= %s AND e.id < %s "  # noqa: S608
        f"AND {condition}), "
        f"changed AS (INSERT INTO {DELIVERY} (destination_id, event_id, status, attempts, "
        "next_attempt_at, last_error, created_at, claimed_by) "
        "SELECT %s, m.id, 'pending', 0, now(), '', now(), '' FROM matched m "
        f"ON CONFLICT (destination_id, event_id) DO UPDATE SET {RESET_SQL} "
        f"WHERE {DELIVERY}.status <> 'in_flight' RETURNING 1) "
        "SELECT (SELECT count(*) FROM matched), (SELECT count(*) FROM changed)"
    )


def _run_chunk(job_id: int, condition: str, params: list) -> ReplayJob:
    with transaction.atomic():
        job = ReplayJob.objects.select_for_update().get(pk=job_id)
        if job.state == ReplayState.DONE:
            return job
        assert job.next_id is not None and job.high_id is not None
        start, end = job.next_id, min(job.next_id + job.chunk_ids, job.high_id + 1)
        sql = _chunk_sql(job, condition)
        if job.scope == ReplayScope.DEAD:
            values = [job.destination_id, start, end]
        else:
            values = [start, end, *params, job.destination_id]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            matched, changed = cursor.fetchone()
        job.next_id, job.done, job.replayed = end, job.done + matched, job.replayed + changed
        fields = ["next_id", "done", "replayed", "lease_until"]
        if end > job.high_id:
            job.state, job.finished_at = ReplayState.DONE, timezone.now()
            # Rows that vanished meanwhile (events deleted) would otherwise leave it short.
            job.total = job.done
            fields += ["state", "finished_at", "total"]
        job.lease_until = timezone.now() + timedelta(seconds=_lease_seconds())
        job.save(update_fields=fields)
        return job


def replay_job_run(
    job_id: int,
    *,
    time_budget: float | None = None,
    progress: Callable[[ReplayJob], None] | None = None,
) -> bool:
    """Work the job through, chunk by chunk, for up to ``time_budget`` seconds (None: to
    the end). Returns True when work is left (the caller hands over to a fresh task). A job
    another task holds is left to it (False)."""
    if not _lease(job_id):
        return False
    deadline = None if time_budget is None else time.monotonic() + time_budget
    try:
        job = ReplayJob.objects.get(pk=job_id)
        condition, params = ("", []) if job.scope == ReplayScope.DEAD else _events_condition(job)
        if job.next_id is None:
            _measure(job, condition, params)
            if progress is not None:
                progress(job)
        while job.state != ReplayState.DONE:
            job = _run_chunk(job_id, condition, params)
            if progress is not None:
                progress(job)
            if deadline is not None and time.monotonic() >= deadline:
                break
    except ReplayJob.DoesNotExist:
        return False  # the destination was deleted with its replays
    except Exception as error:
        # Left unfinished with the lease released: the next sweep tries again.
        ReplayJob.objects.filter(pk=job_id).update(last_error=str(error)[:2000], lease_until=None)
        raise
    more = job.state != ReplayState.DONE
    ReplayJob.objects.filter(pk=job_id).update(lease_until=None, last_error="")
    return more


def replay_progress(destination_ids: list[int]) -> dict[int, ReplayJob]:
    """Each destination's latest unfinished replay (for the destination list)."""
    jobs = (
        ReplayJob.objects.filter(
            destination_id__in=destination_ids,
            state__in=[ReplayState.QUEUED, ReplayState.RUNNING],
        )
        .order_by("destination_id", "-id")
        .distinct("destination_id")
    )
    return {job.destination_id: job for job in jobs}
