"""Extra headers: only names and values that every HTTP parser reads the same way are saved;
a bad row already stored pauses its destination with the reason instead of sticking its
batch in flight; the admin never shows a stored value back."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from metrics_source.forwarding.delivery import deliver_batch
from metrics_source.forwarding.destinations import (
    DestinationInvalid,
    destination_create,
    header_problems,
)
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.models import Delivery, DeliveryStatus, Destination
from tests.forwarding.test_admin import DESTINATIONS, form_data
from tests.forwarding_support import receiver, store_events

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Team": "growth\r\nX-Injected: 1"},
        {"X-Team": "growth\nX-Injected: 1"},
        {"X-Team": "a\x00b"},
        {"X-Team": "a\x7fb"},
        {"X-Team": ""},
        {"X-Team": " padded"},
        {"X-Team\r\nX-Injected": "1"},
        {"X-Team: 1": "x"},
        {"X Team": "x"},
        {"": "x"},
        {"Host ": "evil.example"},
        {" Host": "evil.example"},
        {"HOST": "evil.example"},
        {"Transfer-Encoding": "chunked"},
        {"Content-Length": "0"},
        {"Authorization": "Bearer x"},
        {"X-Team": "€uro"},
    ],
)
def test_bad_names_and_values_are_refused(headers):
    assert header_problems(headers)
    with pytest.raises(DestinationInvalid):
        destination_create(
            name="x", kind="webhook", url="http://127.0.0.1:9/x", extra_headers=headers
        )
    assert not Destination.objects.exists()


def test_good_headers_pass():
    assert header_problems({"X-Api-Key": "abc def", "X_Odd.Name~": "v=1; w=\t2"}) is None


def test_a_bad_stored_row_pauses_its_destination_with_the_reason():
    with receiver(lambda r, i: (200, {}, b"ok")) as target:
        destination = destination_create(name="d", kind="webhook", url=target.url + "/in")
        # As a row saved before the rules, or edited in the database, could be.
        Destination.objects.filter(pk=destination.pk).update(
            extra_headers={"X-Team": "growth\r\nX-Injected: 1"}
        )
        store_events(2)
        destination_fanout(destination_id=destination.pk)
        deliver_batch(Destination.objects.get(pk=destination.pk), worker="test")
        assert target.requests == []
    destination.refresh_from_db()
    assert destination.paused and "extra headers are refused" in destination.pause_reason
    statuses = set(
        Delivery.objects.filter(destination=destination).values_list("status", flat=True)
    )
    assert statuses == {DeliveryStatus.PENDING}


def test_the_admin_masks_stored_values_and_keeps_them_unless_replaced(admin_client):
    headers = {"X-Api-Key": "header-secret-123", "X-Team": "growth"}
    destination = destination_create(
        name="crm", kind="webhook", url="http://127.0.0.1:9/hook", extra_headers=headers
    )
    change = f"{DESTINATIONS}{destination.pk}/change/"
    page = admin_client.get(change).content.decode()
    assert "header-secret-123" not in page and "growth" not in page
    assert "X-Api-Key" in page and "********" in page
    # Keep one masked, replace the other, add a third.
    edited = {"X-Api-Key": "********", "X-Team": "retention", "X-New": "1"}
    response = admin_client.post(change, form_data(extra_headers=json.dumps(edited)))
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.extra_headers == {
        "X-Api-Key": "header-secret-123",
        "X-Team": "retention",
        "X-New": "1",
    }


def test_view_only_accounts_see_header_names_only():
    destination = destination_create(
        name="crm", kind="webhook", url="http://127.0.0.1:9/hook",
        extra_headers={"X-Api-Key": "header-secret-123"},
    )  # fmt: skip
    viewer = User.objects.create_user("viewer", password="unused-password-0123", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Analyst"))
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_destination"))
    client = Client()
    client.force_login(viewer)
    page = client.get(f"{DESTINATIONS}{destination.pk}/change/").content.decode()
    assert "X-Api-Key (values hidden)" in page
    assert "header-secret-123" not in page
