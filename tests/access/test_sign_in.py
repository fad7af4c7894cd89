"""Signing in: repeated failures lock a name out from an address (django-axes), each failure
is logged and audited, and a session ends after its idle time."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from metrics_source.access.models import AuditAction, AuditEntry

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "the-right-password-0123"


@pytest.fixture
def admin_account(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def sign_in(client: Client, password: str):
    return client.post(LOGIN, {"username": "admin", "password": password})


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_thirty_wrong_passwords_lock_the_name_out_from_that_address(admin_account, caplog):
    client = Client(REMOTE_ADDR="198.51.100.4")
    with caplog.at_level(logging.WARNING, logger="metrics_source.access"):
        answers = [sign_in(client, f"wrong-{attempt}").status_code for attempt in range(30)]
    limit = settings.AXES_FAILURE_LIMIT
    # The form answers each failure until the limit, then the lockout page.
    assert answers[: limit - 1] == [200] * (limit - 1)
    assert set(answers[limit - 1 :]) == {429}
    locked = sign_in(client, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert not signed_in(client)
    # Failures are logged (the typed name and the address, never the password) and audited.
    failures = [record for record in caplog.records if "sign-in failed" in record.getMessage()]
    assert failures and "198.51.100.4" in failures[0].getMessage()
    assert not any("wrong-" in record.getMessage() for record in caplog.records)
    entries = AuditEntry.objects.filter(action=AuditAction.LOGIN_FAILED)
    assert entries.count() >= limit
    assert {(entry.actor, entry.ip_address) for entry in entries} == {("admin", "198.51.100.4")}
    assert not AuditEntry.objects.filter(action=AuditAction.LOGIN).exists()


def test_another_address_still_signs_in_and_a_success_is_audited(admin_account):
    attacker = Client(REMOTE_ADDR="198.51.100.4")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, f"wrong-{attempt}")
    owner = Client(REMOTE_ADDR="192.0.2.10")
    assert sign_in(owner, PASSWORD).status_code == 302
    assert signed_in(owner)
    (entry,) = AuditEntry.objects.filter(action=AuditAction.LOGIN)
    assert (entry.actor, entry.actor_id, entry.ip_address) == (
        "admin",
        admin_account.pk,
        "192.0.2.10",
    )


def test_a_success_before_the_limit_starts_the_count_again(admin_account):
    client = Client(REMOTE_ADDR="198.51.100.4")
    for _ in range(2):
        for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
            assert sign_in(client, f"wrong-{attempt}").status_code == 200
        assert sign_in(client, PASSWORD).status_code == 302
        client.post("/admin/logout/")


def test_each_request_starts_the_idle_time_again_and_an_idle_session_ends(admin_account):
    client = Client()
    assert sign_in(client, PASSWORD).status_code == 302
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert signed_in(client)
    renewed = Session.objects.get(pk=session.pk).expire_date - timezone.now()
    assert renewed > timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)
    # Idle past its age: the next request is sent to sign in.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
