"""What the console says about forwarding at INFO and WARNING, now that Celery's per-task lines
are DEBUG: a destination paused (once, when it happens) and a replay finished (once)."""

from __future__ import annotations

import logging

import pytest

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.fanout import fanout_all
from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.replay_jobs import replay_job_create
from metrics_source.tasks import deliver_destination, replay_run
from tests.forwarding_support import receiver, store_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


def lines(caplog, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "metrics_source.tasks" and r.levelno == level
    ]


def test_a_destination_paused_by_its_answer_is_logged_once_as_a_warning(caplog):
    caplog.set_level(logging.INFO, logger="metrics_source.tasks")
    with receiver(lambda received, index: (410, {}, b"gone for good")) as target:
        destination = destination_create(
            name="gone", kind="segment", url=target.url + "/", secret="k"
        )
        store_events(3)
        fanout_all()
        deliver_destination(destination.pk)
        deliver_destination(destination.pk)  # already paused: nothing new to say
    assert Destination.objects.get(pk=destination.pk).paused
    warnings = lines(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("destination 'gone' paused: Paused: the destination answered")


def test_a_replay_that_finishes_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="metrics_source.tasks")
    with receiver() as target:
        destination = destination_create(
            name="fine", kind="segment", url=target.url + "/", secret="k"
        )
        store_events(4)
        fanout_all()
        deliver_destination(destination.pk)
        job = replay_job_create(destination_id=destination.pk, scope="events")
        replay_run(job.pk)
        replay_run(job.pk)  # done already: said once
    assert lines(caplog, logging.INFO) == [
        f"replay {job.pk} for destination 'fine' finished: 4 events matched, 4 made pending again"
    ]
    assert lines(caplog, logging.WARNING) == []
