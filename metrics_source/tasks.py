"""Thin Celery tasks: take ids, call a service. Redis carries only these wake-ups; the state
is in PostgreSQL, and the periodic sweep re-creates any task that was lost."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from metrics_source.forwarding.delivery import destination_drain
from metrics_source.forwarding.fanout import destinations_due, fanout_all
from metrics_source.forwarding.models import Destination, ReplayJob, ReplayScope, ReplayState
from metrics_source.forwarding.replay_jobs import replay_job_run, replay_jobs_due
from metrics_source.summaries.rollup import summaries_catch_up, summaries_pending

# Celery's own lines about each run are DEBUG (metrics_source.runtime.console); these say at
# INFO and WARNING what a person acts on: a destination paused, a replay finished.
logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def forwarding_sweep() -> None:
    """Fan new events out to the ledger, then start a delivery task per destination with
    work due (one task per destination: a slow one holds one worker slot at most)."""
    fanout_all()
    for destination_id in destinations_due():
        deliver_destination.delay(destination_id)
    # Replays started in the admin, and any a killed worker or a flushed broker left behind.
    for job_id in replay_jobs_due():
        replay_run.delay(job_id)


@shared_task(ignore_result=True)
def deliver_destination(destination_id: int) -> None:
    was_paused = Destination.objects.filter(pk=destination_id, paused=True).exists()
    if destination_drain(destination_id=destination_id):
        # More is due: hand over to a fresh task so other destinations get their turn.
        deliver_destination.delay(destination_id)
    elif not was_paused:  # a pause ends the drain: say so once, when it happens
        paused = (
            Destination.objects.filter(pk=destination_id, paused=True)
            .values_list("name", "pause_reason")
            .first()
        )
        if paused is not None:
            logger.warning("destination %r paused: %s", *paused)


@shared_task(ignore_result=True)
def replay_run(job_id: int) -> None:
    """Work a large replay through for a while; a fresh task continues, so replays share the
    worker slots with deliveries."""
    started = timezone.now()
    if replay_job_run(job_id, time_budget=settings.FORWARDING_TASK_SECONDS):
        replay_run.delay(job_id)
        return
    # Finished by this run (finished_at is set once, in the transaction of the last chunk).
    finished = (
        ReplayJob.objects.filter(pk=job_id, state=ReplayState.DONE, finished_at__gte=started)
        .values_list("destination__name", "scope", "replayed", "done")
        .first()
    )
    if finished is not None:
        name, scope, replayed, matched = finished
        what = "dead deliveries" if scope == ReplayScope.DEAD else "events"
        logger.info(
            "replay %d for destination %r finished: %d %s matched, %d made pending again",
            job_id, name, matched, what, replayed,
        )  # fmt: skip


@shared_task(ignore_result=True)
def summaries_refresh() -> None:
    """Bring the dashboard's summaries up to date with the events stored so far. A run that
    finds another one busy returns at once: that one takes the new events."""
    result = summaries_catch_up(time_budget=settings.SUMMARIES_TASK_SECONDS)
    if result.ran and result.events and summaries_pending():
        # The time budget ran out with events left: continue in a fresh task, so the worker
        # slot is shared with forwarding meanwhile.
        summaries_refresh.delay()
