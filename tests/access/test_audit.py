"""The audit log: each listed action leaves one entry naming who, what, when, from where and
the object; entries cannot be changed or removed, in the admin or in the database."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.db import DatabaseError, transaction
from django.test import Client

from metrics_source.access.models import AuditAction, AuditEntry
from metrics_source.forwarding.fanout import destination_fanout
from metrics_source.forwarding.models import Delivery, Destination
from tests.dashboard.test_channel import ingest_sample
from tests.forwarding.test_admin import DESTINATIONS, LEDGER, form_data
from tests.forwarding_support import receiver, store_events

pytestmark = pytest.mark.django_db

SOURCES = "/admin/metrics_source/source/"
AUDIT = "/admin/metrics_source/auditentry/"
ADDRESS = "203.0.113.7"


@pytest.fixture(autouse=True)
def _private_networks(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def boss(admin_user) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(admin_user)
    return client


def only_entry(action: AuditAction) -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(action=action)
    return entry


def assert_by_admin(entry: AuditEntry, admin_user: User) -> None:
    assert (entry.actor, entry.actor_id, entry.ip_address) == ("admin", admin_user.pk, ADDRESS)


def test_source_key_rotation_and_enable_disable(boss, admin_user, make_source) -> None:
    created = make_source("Audited")
    pk = created.source.pk
    for action in ("rotate_write_key", "disable", "enable"):
        boss.post(SOURCES, {"action": action, "_selected_action": [pk]})
    for action in (
        AuditAction.KEY_ROTATED,
        AuditAction.SOURCE_DISABLED,
        AuditAction.SOURCE_ENABLED,
    ):
        entry = only_entry(action)
        assert_by_admin(entry, admin_user)
        assert (entry.object_type, entry.object_id) == ("metrics_source.source", str(pk))
        assert entry.object_repr == "Audited"
    # A new write key is shown once on the page, never kept in the log.
    rotated = only_entry(AuditAction.KEY_ROTATED)
    assert "msk_" not in str(rotated.detail)


def test_destination_create_change_delete_pause_resume_test_and_replay(boss, admin_user) -> None:
    with receiver(lambda r, i: (200, {}, b"ok")) as target:
        boss.post(DESTINATIONS + "add/", form_data(url=target.url + "/in"))
        destination = Destination.objects.get()
        pk = destination.pk
        boss.post(f"{DESTINATIONS}{pk}/change/", form_data(url=target.url + "/in", name="crm2"))
        for action in ("send_test_event", "pause", "resume", "replay_dead"):
            boss.post(DESTINATIONS, {"action": action, "_selected_action": [pk]})
    store_events(2)
    destination_fanout(destination_id=pk)
    delivery = Delivery.objects.filter(destination_id=pk).first()
    boss.post(LEDGER, {"action": "replay", "_selected_action": [delivery.pk]})
    # One with a ledger cannot be deleted (its deliveries keep it); one without can.
    boss.post(DESTINATIONS + "add/", form_data(name="gone"))
    gone = Destination.objects.get(name="gone")
    boss.post(f"{DESTINATIONS}{gone.pk}/delete/", {"post": "yes"})
    assert not Destination.objects.filter(pk=gone.pk).exists()
    assert [entry.action for entry in AuditEntry.objects.filter(object_id=str(gone.pk))] == [
        AuditAction.DELETED,
        AuditAction.CREATED,
    ]

    entries = list(AuditEntry.objects.filter(object_id=str(pk)).order_by("id"))
    assert [entry.action for entry in entries] == [
        AuditAction.CREATED,
        AuditAction.CHANGED,
        AuditAction.TEST_EVENT,
        AuditAction.DESTINATION_PAUSED,
        AuditAction.DESTINATION_RESUMED,
        AuditAction.REPLAY,
        AuditAction.REPLAY,
    ]
    for entry in entries:
        assert_by_admin(entry, admin_user)
        assert entry.object_type == "metrics_source.destination"
    assert "Name" in entries[1].detail["fields"]
    assert entries[5].detail["scope"] == "dead"
    assert entries[6].detail == {"deliveries": [delivery.pk]}
    # The signing secret never reaches the log.
    secret = destination.secret
    assert not any(secret in str(entry.detail) for entry in AuditEntry.objects.all())


def test_csv_export_and_person_page_view(boss, admin_user) -> None:
    ingest_sample()
    boss.get("/people/42/")
    boss.get("/channels/", {"download": "channels", "period": "30d"})
    viewed = only_entry(AuditAction.PERSON_VIEWED)
    assert_by_admin(viewed, admin_user)
    assert (viewed.object_type, viewed.object_id) == ("person", "42")
    export = only_entry(AuditAction.CSV_EXPORT)
    assert_by_admin(export, admin_user)
    assert export.object_id == "/channels/"
    assert export.detail == {"table": "channels", "query": "download=channels&period=30d"}


def test_a_refused_download_is_not_an_export(admin_user) -> None:
    viewer = User.objects.create_user("viewer", password="unused-password-0123", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    client = Client()
    client.force_login(viewer)
    assert client.get("/channels/", {"download": "channels"}).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditAction.CSV_EXPORT).exists()


def test_role_changes_in_the_admin(boss, admin_user) -> None:
    someone = User.objects.create_user("someone", password="unused-password-0123", is_staff=True)
    page = boss.get(f"/admin/auth/user/{someone.pk}/change/").content.decode()
    # Keep every field as the form shows it, and add the Analyst role.
    analyst = Group.objects.get(name="Analyst")
    data = {
        "username": "someone",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [analyst.pk],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": re.search(r'name="date_joined_0" value="([^"]+)"', page)[1],
        "date_joined_1": re.search(r'name="date_joined_1" value="([^"]+)"', page)[1],
    }
    response = boss.post(f"/admin/auth/user/{someone.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(someone.groups.all()) == [analyst]
    entry = only_entry(AuditAction.ROLE_CHANGED)
    assert_by_admin(entry, admin_user)
    assert (entry.object_type, entry.object_id) == ("auth.user", str(someone.pk))
    assert "Groups" in entry.detail["fields"]


def test_entries_cannot_be_changed_or_removed() -> None:
    entry = AuditEntry.objects.create(action=AuditAction.LOGIN, actor="someone")
    for statement in (
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(actor="someone else"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    entry.refresh_from_db()
    assert entry.actor == "someone"


def test_the_admin_lists_and_filters_entries_but_offers_no_change(boss, admin_user) -> None:
    AuditEntry.objects.create(action=AuditAction.LOGIN, actor="alice")
    AuditEntry.objects.create(action=AuditAction.CSV_EXPORT, actor="bob")
    kept = AuditEntry.objects.create(action=AuditAction.LOGIN, actor="bob")
    listing = boss.get(AUDIT, {"action__exact": "login", "actor": "bob"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [kept]
    year = kept.at.year
    assert boss.get(AUDIT, {"at__year": year, "actor": "bob"}).context["cl"].result_count == 2
    assert boss.get(AUDIT, {"at__year": year - 1}).context["cl"].result_count == 0
    detail = boss.get(f"{AUDIT}{kept.pk}/change/")
    assert detail.status_code == 200 and "Save" not in detail.content.decode()
    assert boss.post(f"{AUDIT}{kept.pk}/change/", {"actor": "eve"}).status_code == 403
    assert boss.post(f"{AUDIT}{kept.pk}/delete/", {"post": "yes"}).status_code == 403
    assert boss.get(AUDIT + "add/").status_code == 403
    kept.refresh_from_db()
    assert kept.actor == "bob"
