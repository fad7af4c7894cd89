"""Large replays in the background (a ReplayJob worked through by Celery tasks, its progress in
the admin), resumed after a killed worker; the call's integrations on forwarded events; the
ledger filtered by event time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from django.core.management import call_command

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.models import (
    Delivery,
    DeliveryStatus,
    Destination,
    ReplayJob,
    ReplayScope,
    ReplayState,
)
from metrics_source.forwarding.replay import events_replay
from metrics_source.forwarding.replay_jobs import replay_job_create
from metrics_source.ingest.service import events_ingest_calls
from tests.forwarding_support import (
    celery_worker,
    receiver,
    store_events,
    wait_for,
    worker_database_url,
)
from tests.payloads import track_call

DESTINATIONS = "/admin/metrics_source/destination/"
LEDGER = "/admin/metrics_source/delivery/"
REPLAYS = "/admin/metrics_source/replayjob/"
REFRESH = '<meta http-equiv="refresh"'


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def queue() -> str:
    return f"fwd-test-{uuid.uuid4().hex[:12]}"


def job_state(job_id: int) -> ReplayJob:
    return ReplayJob.objects.get(pk=job_id)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_replay_runs_in_a_worker_and_the_replay_list_shows_its_progress(
    admin_client, tmp_path, queue
):
    ids = store_events(40, prefix="hist", start=datetime(2022, 3, 1, tzinfo=UTC))
    with receiver() as target:
        destination = destination_create(name="late", kind="webhook", url=target.url, batch_size=10)
        response = admin_client.post(
            DESTINATIONS,
            {
                "action": "replay_range",
                "_selected_action": [destination.pk],
                "apply": "1",
                "since": "",
                "until": "",
            },
            follow=True,
        )
        # Nothing replayed in the request: the list shows the queued replay and reloads itself.
        assert response.redirect_chain[-1][0] == REPLAYS
        page = response.content.decode()
        assert "started in the background" in page and "Queued" in page and REFRESH in page
        assert "every event matching the filters" in page and "admin" in page
        assert not Delivery.objects.filter(destination=destination).exists()
        (job,) = ReplayJob.objects.all()
        assert "Queued" in admin_client.get(DESTINATIONS).content.decode()

        with celery_worker(tmp_path, queue):
            wait_for(lambda: job_state(job.pk).state == ReplayState.DONE, what="replay done")
            wait_for(lambda: len(set(target.delivered_message_ids())) == 40, what="40 sent")
    job.refresh_from_db()
    assert (job.total, job.done, job.replayed) == (40, 40, 40)
    assert job.requested_by == "admin" and job.started_at and job.finished_at
    assert sorted(set(target.delivered_message_ids())) == sorted(ids)
    page = admin_client.get(REPLAYS).content.decode()
    assert "40 of 40 (100%)" in page and '<progress value="100.0"' in page
    assert REFRESH not in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_replay_leaves_a_replay_the_next_worker_finishes(tmp_path, queue):
    ids = store_events(100, prefix="kill", start=datetime(2022, 3, 1, tzinfo=UTC))
    with receiver() as target:
        destination = destination_create(name="k", kind="webhook", url=target.url, batch_size=50)
        # A ledger row in the middle of the range, held locked from outside: the replay's
        # sixth chunk waits on it, so the worker is surely mid-replay when it is killed.
        events_replay(destination_id=destination.pk, message_ids=[ids[55]])
        Delivery.objects.filter(destination=destination).update(status=DeliveryStatus.DELIVERED)
        blocker = psycopg.connect(worker_database_url())
        blocker.execute(
            f"SELECT 1 FROM {Delivery._meta.db_table} WHERE destination_id = %s FOR UPDATE",  # noqa: S608
            [destination.pk],
        )
        job = replay_job_create(destination_id=destination.pk, scope=ReplayScope.EVENTS,
                                chunk_ids=10)  # fmt: skip
        try:
            with celery_worker(tmp_path, queue) as first:
                wait_for(lambda: job_state(job.pk).done >= 50, what="five chunks replayed")
                stuck = job_state(job.pk)
                first.kill()
        finally:
            blocker.rollback()
            blocker.close()
        assert stuck.state == ReplayState.RUNNING and stuck.done < 100
        with celery_worker(tmp_path, queue):
            wait_for(lambda: job_state(job.pk).state == ReplayState.DONE, what="replay resumed")
            wait_for(lambda: set(target.delivered_message_ids()) == set(ids), what="all sent")
    job.refresh_from_db()
    assert (job.total, job.done) == (100, 100)
    # Each chunk counted once: the killed worker's uncommitted chunk was redone, none twice.
    assert job.replayed == 100


@pytest.mark.django_db
def test_the_admin_replays_dead_deliveries_through_a_job_and_the_command_prints_progress(
    admin_client,
):
    destination = destination_create(name="d", kind="webhook", url="http://127.0.0.1:9/x")
    store_events(3)
    events_replay(destination_id=destination.pk, since=datetime(2000, 1, 1, tzinfo=UTC))
    Delivery.objects.filter(destination=destination).update(status=DeliveryStatus.DEAD)
    response = admin_client.post(
        DESTINATIONS, {"action": "replay_dead", "_selected_action": [destination.pk]}, follow=True
    )
    assert "everything dead" in response.content.decode()
    (job,) = ReplayJob.objects.all()
    assert job.scope == ReplayScope.DEAD and job.state == ReplayState.QUEUED
    # The command follows the same path: it runs the queued job's kind of work itself.
    from io import StringIO

    out = StringIO()
    call_command("forward_replay", "d", "--dead", stdout=out)
    text = out.getvalue()
    assert "3 of 3 everything dead (100%)" in text
    assert "3 deliveries to d are pending again" in text
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    out = StringIO()
    call_command("forward_replay", "d", "--all", "--background", stdout=out)
    assert "queued" in out.getvalue()
    assert ReplayJob.objects.filter(state=ReplayState.QUEUED).count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["webhook", "segment"])
def test_forwarded_events_carry_the_calls_integrations(tmp_path, queue, kind):
    integrations = {"All": False, "Amplitude": True, "Mixpanel": {"projectId": "p-7"}}
    calls = [
        {**track_call("Email Opened", message_id=f"with-{kind}"), "integrations": integrations},
        track_call("Email Opened", message_id=f"without-{kind}"),
    ]
    with receiver() as target, celery_worker(tmp_path, queue):
        destination = destination_create(
            name=f"i-{kind}", kind=kind, url=target.url, secret="wk" if kind == "segment" else ""
        )
        assert events_ingest_calls(source=None, calls=calls).stored == 2
        wait_for(lambda: len(target.delivered_message_ids()) >= 2, what="both sent")
    events = {e["messageId"]: e for r in target.requests for e in r.events()}
    assert events[f"with-{kind}"]["integrations"] == integrations
    assert list(events[f"with-{kind}"])[-1] == "integrations"
    assert "integrations" not in events[f"without-{kind}"]
    assert Destination.objects.get(pk=destination.pk).kind == kind


@pytest.mark.django_db
def test_batch_level_integrations_are_forwarded_too():
    from metrics_source.forwarding.fanout import destination_fanout
    from metrics_source.forwarding.ledger import deliveries_claim

    destination = destination_create(name="b", kind="webhook", url="http://127.0.0.1:9/x")
    events_ingest_calls(
        source=None,
        calls=[track_call("Email Opened", message_id="batch-1")],
        batch_integrations={"Amplitude": False},
    )
    destination_fanout(destination_id=destination.pk)
    (row,) = deliveries_claim(destination_id=destination.pk, worker="t", limit=5, seconds=60)
    assert orjson.loads(row.body)["integrations"] == {"Amplitude": False}


@pytest.mark.django_db
def test_the_ledger_filters_by_event_time_through_the_event_id(admin_client):
    destination = destination_create(name="t", kind="webhook", url="http://127.0.0.1:9/x")
    old = store_events(2, prefix="old", start=datetime(2021, 1, 5, tzinfo=UTC))
    new = store_events(2, prefix="new", start=datetime(2024, 7, 5, tzinfo=UTC))
    # Both replayed now: the rows' creation time says nothing about the events' time.
    events_replay(destination_id=destination.pk, since=datetime(2000, 1, 1, tzinfo=UTC))
    query = (
        f"?destination__id__exact={destination.pk}"
        "&event__timestamp__gte=2024-07-01+00:00:00%2B00:00"
        "&event__timestamp__lt=2024-08-01+00:00:00%2B00:00"
    )
    response = admin_client.get(LEDGER + query)
    assert response.status_code == 200
    page = response.content.decode()
    assert all(m in page for m in new) and not any(m in page for m in old)
    assert "event time" in admin_client.get(LEDGER).content.decode()
    # Still filterable by the rows' own creation time.
    created = admin_client.get(LEDGER + "?created_at__gte=2000-01-01+00:00:00%2B00:00")
    assert all(m in created.content.decode() for m in old + new)
    # The filter reads the events table through each ledger row's event_id (a subplan on its
    # primary key), never joins it wholesale: the count the page makes has no hash or merge
    # join that would scan every event. (The page's own rows join their events by id to show
    # their messageIds, a page of them at a time.)
    plan = response.context["cl"].queryset.select_related(None).explain()
    assert "SubPlan" in plan and "Join" not in plan, plan
