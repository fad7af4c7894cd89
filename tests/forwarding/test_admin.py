"""Operator's view: the destination admin (secrets write-only, SSRF refusals, health, test
event, replay) and the forward_status / forward_replay commands."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.test import override_settings

from metrics_source.forwarding.destinations import (
    DestinationInvalid,
    destination_create,
    destination_lease,
)
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.models import Delivery, DeliveryStatus, Destination, ReplayJob
from metrics_source.forwarding.probe import destination_send_test
from metrics_source.forwarding.replay_jobs import replay_job_run
from metrics_source.forwarding.signing import new_secret
from tests.forwarding_support import receiver, store_events, verify_standard_webhook

DESTINATIONS = "/admin/metrics_source/destination/"
LEDGER = "/admin/metrics_source/delivery/"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def collected_static(tmp_path_factory):
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


def form_data(**overrides) -> dict:
    data = {
        "name": "crm",
        "kind": "webhook",
        "enabled": "on",
        "url": "http://127.0.0.1:9/hook",
        "secret": "",
        "previous_secret": "",
        "extra_headers": "{}",
        "channels": "",
        "event_names": "",
        "campaign_ids": "",
        "broadcast_ids": "",
        "newsletter_ids": "",
        "transactional_message_ids": "",
        "batch_size": "1",
        "timeout_seconds": "15",
        "max_requests_per_second": "",
        "backfill_from_0": "",
        "backfill_from_1": "",
    }
    data.update(overrides)
    return data


def test_adding_a_webhook_shows_a_generated_secret_once_and_never_again(admin_client):
    response = admin_client.post(DESTINATIONS + "add/", form_data(), follow=True)
    assert response.status_code == 200
    shown = SECRET.findall(response.content.decode())
    destination = Destination.objects.get(name="crm")
    assert shown and shown[0] == destination.secret
    change = admin_client.get(f"{DESTINATIONS}{destination.pk}/change/").content.decode()
    assert destination.secret not in change
    # Saving with the secret left blank keeps it.
    admin_client.post(f"{DESTINATIONS}{destination.pk}/change/", form_data(name="crm2"))
    destination.refresh_from_db()
    assert destination.name == "crm2" and destination.secret == shown[0]


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://example.com/x", "plain http"), ("https://127.0.0.1/x", "loopback")],
)
def test_the_form_refuses_urls_inside_the_network(admin_client, settings, url, message):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = False
    response = admin_client.post(DESTINATIONS + "add/", form_data(url=url))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Destination.objects.exists()


def test_a_bad_signing_secret_and_reserved_headers_are_refused(admin_client):
    data = form_data(secret="not-a-whsec", extra_headers='{"webhook-id": "x"}')
    content = admin_client.post(DESTINATIONS + "add/", data).content.decode()
    assert "whsec_" in content and "Set by the destination kind" in content
    assert not Destination.objects.exists()


def test_send_test_event_reports_the_answer_and_signs_it(admin_client):
    with receiver(lambda r, i: (202, {}, b'{"queued": true}')) as target:
        admin_client.post(DESTINATIONS + "add/", form_data(url=target.url + "/in"), follow=True)
        destination = Destination.objects.get()
        response = admin_client.post(
            DESTINATIONS,
            {"action": "send_test_event", "_selected_action": [destination.pk]},
            follow=True,
        )
    content = response.content.decode()
    assert "HTTP 202" in content and "queued" in content
    (request,) = target.requests
    verify_standard_webhook(destination.secret, request.headers, request.body)
    # The list shows the request in the destination's health.
    page = admin_client.get(DESTINATIONS).content.decode()
    assert "100.0%" in page and " ms" in page


def test_health_ledger_and_replay_of_dead_deliveries(admin_client):
    destination = destination_create(name="d", kind="webhook", url="http://127.0.0.1:9/x")
    store_events(3)
    destination_fanout(destination_id=destination.pk)
    dead = Delivery.objects.filter(destination=destination).first()
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD, last_error="HTTP 400")
    page = admin_client.get(DESTINATIONS).content.decode()
    assert ">2<" in page  # the backlog column: two still pending
    ledger = admin_client.get(f"{LEDGER}?status__exact=dead").content.decode()
    assert "HTTP 400" in ledger and f"/admin/metrics_source/event/{dead.event_id}/change/" in ledger
    admin_client.post(DESTINATIONS, {"action": "replay_dead", "_selected_action": [destination.pk]})
    # The replay is a job for the workers; here the service their task calls runs it.
    (job,) = ReplayJob.objects.all()
    replay_job_run(job.pk)
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.PENDING and dead.attempts == 0


def test_replay_range_in_the_admin_includes_events_from_before_the_destination(admin_client):
    store_events(2, prefix="early", start=datetime(2021, 6, 1, tzinfo=UTC))
    destination = destination_create(name="late", kind="webhook", url="http://127.0.0.1:9/x")
    response = admin_client.post(
        DESTINATIONS,
        {
            "action": "replay_range",
            "_selected_action": [destination.pk],
            "apply": "1",
            "since": "2021-01-01 00:00:00",
            "until": "2022-01-01 00:00:00",
        },
        follow=True,
    )
    assert "1 replay(s) started in the background" in response.content.decode()
    (job,) = ReplayJob.objects.all()
    replay_job_run(job.pk)
    job.refresh_from_db()
    assert (job.total, job.replayed) == (2, 2)
    assert Delivery.objects.filter(destination=destination).count() == 2


def test_forward_status_and_forward_replay_commands():
    destination = destination_create(name="cmd", kind="webhook", url="http://127.0.0.1:9/x")
    ids = store_events(4)
    destination_fanout(destination_id=destination.pk)
    Delivery.objects.filter(destination=destination).update(status=DeliveryStatus.DEAD)
    out = io.StringIO()
    call_command("forward_status", "--json", stdout=out)
    (row,) = json.loads(out.getvalue())
    assert row["name"] == "cmd" and row["backlog"] == 0 and not row["paused"]
    out = io.StringIO()
    call_command("forward_replay", "cmd", "--dead", stdout=out)
    assert "4 deliveries to cmd are pending again" in out.getvalue()
    out = io.StringIO()
    call_command("forward_status", stdout=out)
    assert "backlog 4" in out.getvalue()
    Delivery.objects.filter(destination=destination).update(status=DeliveryStatus.DELIVERED)
    out = io.StringIO()
    call_command("forward_replay", "cmd", "--message-id", ids[0], stdout=out)
    assert "1 deliveries" in out.getvalue()
    assert Delivery.objects.get(destination=destination, event__message_id=ids[0]).status == (
        DeliveryStatus.PENDING
    )


def test_pause_and_resume_actions_go_through_the_services(admin_client):
    destination = destination_create(name="p", kind="webhook", url="http://127.0.0.1:9/x")
    response = admin_client.post(
        DESTINATIONS, {"action": "pause", "_selected_action": [destination.pk]}, follow=True
    )
    assert "1 destination(s) paused." in response.content.decode()
    destination.refresh_from_db()
    assert destination.paused and destination.pause_reason == "Paused by admin."
    # A worker may not take it while it is paused.
    assert destination_lease(destination.pk, seconds=5) is None
    admin_client.post(DESTINATIONS, {"action": "resume", "_selected_action": [destination.pk]})
    destination.refresh_from_db()
    assert not destination.paused and destination.pause_reason == ""
    assert destination_lease(destination.pk, seconds=5) is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": "1001"}, "Between 1 and 1000 events for this kind."),
        ({"kind": "segment", "secret": "wk", "batch_size": "2501"}, "Between 1 and 2500"),
        ({"channels": "email,emial"}, "Unknown channel(s): emial"),
    ],
)
def test_the_form_refuses_what_the_kind_cannot_send(admin_client, overrides, message):
    content = admin_client.post(DESTINATIONS + "add/", form_data(**overrides)).content.decode()
    assert message in content
    assert not Destination.objects.exists()


def test_destination_create_generates_a_signing_secret_the_receiver_verifies():
    with receiver() as target:
        destination = destination_create(name="gen", kind="webhook", url=target.url + "/in")
        destination_send_test(destination)
    assert SECRET.fullmatch(destination.secret)
    (request,) = target.requests
    verify_standard_webhook(destination.secret, request.headers, request.body)
    # A secret given is kept, never replaced by a generated one.
    given = new_secret()
    kept = destination_create(name="given", kind="webhook", url=target.url, secret=given)
    assert Destination.objects.get(pk=kept.pk).secret == given


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "kafka"}, "kind"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1001}, "batch_size"),
        ({"kind": "segment"}, "secret"),
        ({"secret": "not-a-whsec"}, "secret"),
        ({"channels": ["emial"]}, "channels"),
        ({"timeout_seconds": 0.1}, "timeout_seconds"),
        ({"extra_headers": {"Authorization": "x"}}, "extra_headers"),
        ({"name": "taken"}, "name"),
    ],
)
def test_destination_create_refuses_what_the_admin_refuses(fields, field):
    destination_create(name="taken", kind="webhook", url="http://127.0.0.1:9/x")
    with pytest.raises(DestinationInvalid) as refused:
        destination_create(
            **{"name": "new", "kind": "webhook", "url": "http://127.0.0.1:9/x"} | fields
        )
    assert list(refused.value.problems) == [field]
    assert Destination.objects.count() == 1


def test_view_only_staff_cannot_run_the_destination_and_ledger_actions():
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    destination = destination_create(name="guarded", kind="webhook", url="http://127.0.0.1:9/x")
    store_events(1)
    destination_fanout(destination_id=destination.pk)
    Delivery.objects.update(status=DeliveryStatus.DEAD)
    user = User.objects.create_user("viewer", password="unused-password-0123", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_destination", "view_delivery"])
    )
    client = Client()
    client.force_login(user)
    assert client.get(DESTINATIONS).status_code == 200
    for action in ("pause", "replay_dead", "send_test_event"):
        client.post(DESTINATIONS, {"action": action, "_selected_action": [destination.pk]})
    (delivery,) = Delivery.objects.all()
    client.post(LEDGER, {"action": "replay", "_selected_action": [delivery.pk]})
    destination.refresh_from_db()
    assert not destination.paused
    assert not ReplayJob.objects.exists()
    assert not destination.attempts.exists()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD


def test_attempts_show_durations_and_times_readably(admin_client, settings):
    """Not 3.7709329999415786 and "Dec. 4, 2026, 2:44 a.m.": milliseconds (seconds past ten)
    and times to the second."""
    from metrics_source.forwarding.models import AttemptOutcome, DeliveryAttempt
    from metrics_source.forwarding.signing import new_secret

    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True
    destination = destination_create(
        name="durations", kind="webhook", url="http://127.0.0.1:9/hook", secret=new_secret()
    )
    started = datetime(2026, 12, 4, 2, 44, 7, tzinfo=UTC)
    for duration in (3.7709329999415786, 12_345.6):
        DeliveryAttempt.objects.create(
            destination=destination, started_at=started, duration_ms=duration,
            outcome=AttemptOutcome.DELIVERED, status_code=200,
        )  # fmt: skip
    page = admin_client.get("/admin/metrics_source/deliveryattempt/").content.decode()
    assert "4 ms" in page and "12.3 s" in page and "3.7709" not in page
    assert "2026-12-04 02:44:07" in page
