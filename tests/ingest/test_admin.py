"""The admin, driven like an operator does: through its forms and actions, logged in as a
superuser. Keys and secrets must be shown once or never, and events must stay read-only.

One module on purpose (over 400 lines): the source and event pages share their form data and
helpers, and each secret's whole life (shown once, kept, replaced, cleared) reads in order."""

from __future__ import annotations

import base64
import hashlib
import re

import orjson
import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from metrics_source.ingest.service import events_ingest_calls
from metrics_source.models import Event, Source
from tests.conftest import cio_signature_headers


@pytest.fixture(scope="module", autouse=True)
def collected_static(tmp_path_factory):
    """Static files collected as a deploy does: with DEBUG off the admin's pages name them
    through the manifest, which exists only after collectstatic."""
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


SOURCES = "/admin/metrics_source/source/"
EVENTS = "/admin/metrics_source/event/"
WRITE_KEY = re.compile(r"msk_[A-Za-z0-9_-]{20,}")


def track_status(write_key: str, message_id: str) -> int:
    """POST one event to the tracking API with this write key, as an SDK would."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    body = {"event": "Email Opened", "userId": "42", "messageId": message_id}
    response = Client().post(
        "/v1/track", orjson.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    return response.status_code


def webhook_status(slug: str, secret: str, event_id: str) -> int:
    payload = {
        "event_id": event_id,
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1700000000,
        "data": {"delivery_id": "d-1", "identifiers": {"id": "7"}},
    }
    body = orjson.dumps(payload)
    response = Client().post(
        f"/webhooks/customerio/{slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(secret, body),
    )
    return response.status_code


def change_form_data(source: Source, **overrides: str) -> dict[str, str]:
    data = {
        "name": source.name,
        "slug": source.slug,
        "enabled": "on",
        "webhook_signing_secret": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


# ------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------


def test_created_source_shows_its_write_key_once_and_stores_only_its_hash(admin_client):
    response = admin_client.post(
        SOURCES + "add/",
        {
            "name": "Workspace A",
            "slug": "workspace-a",
            "enabled": "on",
            "webhook_signing_secret": "created-secret-value",
            "_save": "Save",
        },
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    keys = WRITE_KEY.findall(page)
    assert len(keys) == 1, "the full key appears exactly once on the page"
    write_key = keys[0]
    assert "created-secret-value" not in page

    source = Source.objects.get(slug="workspace-a")
    assert source.write_key_hash == hashlib.sha256(write_key.encode()).hexdigest()
    assert source.write_key_hint == write_key[-4:]
    assert source.webhook_signing_secret == "created-secret-value"
    for field in Source._meta.fields:
        assert write_key not in str(getattr(source, field.attname)), field.name

    assert track_status(write_key, "admin-created-1") == 200
    # Never again: neither the list nor the source's own page shows it.
    for url in (SOURCES, f"{SOURCES}{source.pk}/change/"):
        later = admin_client.get(url).content.decode()
        assert write_key not in later
        assert f"msk_…{source.write_key_hint}" in later


def test_change_form_never_renders_the_secret(admin_client, make_source):
    source = make_source("Workspace B", secret="never-render-this-secret").source

    page = admin_client.get(f"{SOURCES}{source.pk}/change/").content.decode()

    assert "never-render-this-secret" not in page
    assert 'placeholder="set (type a new one to replace it)"' in page


def test_a_rejected_form_does_not_echo_the_typed_secret(admin_client, make_source):
    make_source("Taken")
    response = admin_client.post(
        SOURCES + "add/",
        {
            "name": "Taken",
            "slug": "taken-2",
            "enabled": "on",
            "webhook_signing_secret": "typed-but-rejected",
            "_save": "Save",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert "already exists" in response.content.decode()
    assert "typed-but-rejected" not in response.content.decode()
    assert not Source.objects.filter(slug="taken-2").exists()


def test_blank_secret_keeps_it_new_one_replaces_it_clear_removes_it(admin_client, make_source):
    created = make_source("Workspace C", secret="first-secret")
    source, url = created.source, f"{SOURCES}{created.source.pk}/change/"

    # Blank keeps the secret, and the history does not claim it changed.
    response = admin_client.post(url, change_form_data(source), follow=True)
    assert response.status_code == 200
    source.refresh_from_db()
    assert source.webhook_signing_secret == "first-secret"
    assert LogEntry.objects.get().get_change_message() == "No fields changed."
    assert webhook_status(source.slug, "first-secret", "01HADMINWEBHOOK001") == 200

    # Both at once is refused rather than guessed.
    response = admin_client.post(
        url, change_form_data(source, webhook_signing_secret="x", clear_webhook_signing_secret="on")
    )
    assert response.status_code == 200
    assert "not both" in response.content.decode()
    source.refresh_from_db()
    assert source.webhook_signing_secret == "first-secret"

    # A new secret with no grace replaces it: the webhook endpoint now wants the new one.
    response = admin_client.post(
        url,
        change_form_data(
            source, webhook_signing_secret="second-secret", webhook_secret_grace_hours="0"
        ),
        follow=True,
    )
    assert "second-secret" not in response.content.decode()
    source.refresh_from_db()
    assert source.webhook_signing_secret == "second-secret"
    assert webhook_status(source.slug, "first-secret", "01HADMINWEBHOOK002") == 401
    assert webhook_status(source.slug, "second-secret", "01HADMINWEBHOOK003") == 200

    # Clearing removes it: webhooks are refused (401, as a wrong signature).
    admin_client.post(url, change_form_data(source, clear_webhook_signing_secret="on"))
    source.refresh_from_db()
    assert source.webhook_signing_secret == ""
    assert webhook_status(source.slug, "second-secret", "01HADMINWEBHOOK004") == 401
    page = admin_client.get(url).content.decode()
    assert "No signing secret is set" in page
    assert "clear_webhook_signing_secret" not in page  # nothing left to remove


def test_rotate_action_shows_the_new_key_once_and_the_old_one_stops_working(
    admin_client, make_source
):
    created = make_source("Workspace D")
    other = make_source("Workspace E")
    assert track_status(created.write_key, "rotate-before") == 200

    response = admin_client.post(
        SOURCES,
        {
            "action": "rotate_write_key",
            "_selected_action": [created.source.pk],
            "index": "0",
            "grace_hours": "0",
        },
        follow=True,
    )

    page = response.content.decode()
    keys = WRITE_KEY.findall(page)
    assert len(keys) == 1
    new_key = keys[0]
    assert new_key != created.write_key
    assert track_status(created.write_key, "rotate-old") == 401
    assert track_status(new_key, "rotate-new") == 200
    assert track_status(other.write_key, "rotate-other") == 200  # only the selected source
    assert new_key not in admin_client.get(SOURCES).content.decode()


def test_source_list_shows_state_key_hint_and_absolute_webhook_url(admin_client, make_source):
    with_secret = make_source("Workspace F").source
    without_secret = make_source("Workspace G", secret="", enabled=False).source

    page = admin_client.get(SOURCES).content.decode()
    rows = {
        name: row
        for row in re.findall(r"<tr>.*?</tr>", page, re.DOTALL)
        for name in ("Workspace F", "Workspace G")
        if f">{name}<" in row
    }

    # <wbr> lets the URL wrap at its slashes without changing the text that is copied.
    text = rows["Workspace F"].replace("<wbr>", "")
    assert f"http://testserver/webhooks/customerio/{with_secret.slug}" in text
    assert f"msk_…{with_secret.write_key_hint}" in text
    assert text.count('alt="True"') == 2  # enabled, secret set
    text = rows["Workspace G"].replace("<wbr>", "")
    assert f"http://testserver/webhooks/customerio/{without_secret.slug}" in text
    assert text.count('alt="False"') == 2  # disabled, no secret

    change_page = admin_client.get(f"{SOURCES}{with_secret.pk}/change/").content.decode()
    assert f"http://testserver/webhooks/customerio/{with_secret.slug}</code>" in change_page


# ------------------------------------------------------------------------------------------
# Events
# ------------------------------------------------------------------------------------------


@pytest.fixture
def events(db, source) -> dict[str, Event]:
    calls = [
        {
            "event": "Email Opened",
            "userId": "alice",
            "messageId": "m-1",
            "properties": {"delivery_id": "DLV-abc==", "campaign_id": 5},
        },
        # A delivery id that differs only in case is another delivery (base64).
        {
            "event": "Push Delivered",
            "userId": "bob",
            "messageId": "m-2",
            "properties": {"delivery_id": "DLV-ABC=="},
        },
        # A messageId that equals someone's userId.
        {
            "event": "SMS Sent",
            "userId": "carol",
            "messageId": "alice",
            "properties": {"delivery_id": "DLV-xyz", "recipient": "+15550001111"},
        },
    ]
    result = events_ingest_calls(source=source.source, calls=calls)
    assert result.stored == 3
    return {event.message_id: event for event in Event.objects.all()}


def listed_ids(admin_client, **params: str) -> set[int]:
    response = admin_client.get(EVENTS, params)
    assert response.status_code == 200
    return {
        int(pk)
        for pk in re.findall(
            r"/admin/metrics_source/event/(\d+)/change/", response.content.decode()
        )
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("m-1", {"m-1"}),
        (" m-2 ", {"m-2"}),
        ("DLV-abc==", {"m-1"}),
        ("DLV-ABC==", {"m-2"}),
        ("dlv-abc==", set()),
        ("bob", {"m-2"}),
        ("alice", {"m-1", "alice"}),
        ("m-", set()),
        ("nobody", set()),
    ],
)
def test_event_search_is_exact_on_message_id_delivery_id_and_user_id(
    admin_client, events, term, expected
):
    assert listed_ids(admin_client, q=term) == {events[mid].pk for mid in expected}


def test_event_search_finds_people_known_by_no_id_by_their_anonymous_id(admin_client, source):
    calls = [
        {"event": "Email Opened", "anonymousId": "dana@example.com", "messageId": "anon-1"},
        # Someone with a userId is found by it; the anonymousId beside it is not searched.
        {"event": "Email Opened", "userId": "erin", "anonymousId": "anon-2", "messageId": "id-2"},
    ]
    assert events_ingest_calls(source=source.source, calls=calls).stored == 2
    ids = dict(Event.objects.values_list("message_id", "pk"))
    assert listed_ids(admin_client, q="dana@example.com") == {ids["anon-1"]}
    # The list names the person either way, the anonymous one marked.
    page = admin_client.get(EVENTS).content.decode()
    assert "dana@example.com <span" in page and "(anonymous)</span>" in page
    assert '<td class="field-person">erin</td>' in page
    assert listed_ids(admin_client, q="erin") == {ids["id-2"]}
    assert listed_ids(admin_client, q="anon-2") == set()


def test_event_search_reads_indexes_only(admin_client, source):
    from django.contrib import admin as django_admin

    model_admin = django_admin.site._registry[Event]
    queryset, _ = model_admin.get_search_results(None, Event.objects.all(), "dana@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a table of millions of rows
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in ("event_message_id_unique", "event_delivery_ts", "event_user_ts"):
        assert index in plan, plan
    assert "event_anonymous_ts" in plan, plan


def test_event_list_filters(admin_client, events):
    assert listed_ids(admin_client) == {event.pk for event in events.values()}
    assert listed_ids(admin_client, channel__exact="push") == {events["m-2"].pk}
    assert listed_ids(admin_client, metric__exact="sent") == {events["alice"].pk}


def test_event_list_shows_timestamps_to_the_second_and_sorts_by_them(admin_client, source):
    calls = [
        {"event": "Email Sent", "userId": "u", "messageId": "late",
         "timestamp": "2026-11-17T15:42:07.250Z"},
        {"event": "Email Sent", "userId": "u", "messageId": "early",
         "timestamp": "2026-11-17T09:05:00Z"},
    ]  # fmt: skip
    assert events_ingest_calls(source=source.source, calls=calls).stored == 2
    page = admin_client.get(EVENTS).content.decode()
    assert '<td class="field-when">2026-11-17 15:42:07</td>' in page
    assert '<td class="field-when">2026-11-17 09:05:00</td>' in page
    # Its header is a sort link (the only one: sorting millions of rows by text is slow), and
    # it sorts by the timestamp itself, both ways (`o` counts columns from 0).
    assert re.findall(r'class="sortable column-(\w+)', page) == ["when"]
    oldest_first = admin_client.get(EVENTS, {"o": "1"}).content.decode()
    newest_first = admin_client.get(EVENTS, {"o": "-1"}).content.decode()
    assert oldest_first.index("09:05:00") < oldest_first.index("15:42:07")
    assert newest_first.index("15:42:07") < newest_first.index("09:05:00")


def test_event_detail_is_read_only_with_pretty_json(admin_client, events):
    event = events["m-1"]
    response = admin_client.get(f"{EVENTS}{event.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<pre class="ms-json">' in page
    assert "\n  &quot;delivery_id&quot;: &quot;DLV-abc==&quot;" in page  # indented JSON
    assert 'name="_save"' not in page
    assert 'name="user_id"' not in page
    assert "Campaign id" in page  # set on this event
    assert "Broadcast id" not in page  # empty ids are left out
    # Its delivery's timeline on the dashboard is one click away, from the page and the list.
    timeline = 'href="/deliveries/DLV-abc==/"'
    assert timeline in page
    assert timeline in admin_client.get(EVENTS).content.decode()


@override_settings(TIME_ZONE="Europe/Paris")
def test_event_detail_shows_its_times_to_the_millisecond_in_the_time_zone(admin_client, source):
    call = {"event": "Email Opened", "userId": "u", "messageId": "ms-times",
            "timestamp": "2026-07-01T10:15:30.250Z"}  # fmt: skip
    assert events_ingest_calls(source=source.source, calls=[call]).stored == 1
    event = Event.objects.get(message_id="ms-times")
    page = admin_client.get(f"{EVENTS}{event.pk}/change/").content.decode()
    times = dict(re.findall(r"<label>([^<]+):</label>\s*<div class=\"readonly\">([^<]+)<", page))
    assert times["Timestamp"] == "2026-07-01 12:15:30.250 CEST"  # Paris in summer
    assert times["Original timestamp"] == "2026-07-01 12:15:30.250 CEST"
    assert times["Received at"].endswith((" CET", " CEST"))
    assert "Sent at" not in times  # not set on this call: the row is left out


def test_event_admin_refuses_add_change_and_delete(admin_client, events):
    event = events["m-1"]
    before = list(Event.objects.order_by("pk").values())

    assert admin_client.get(EVENTS + "add/").status_code == 403
    assert admin_client.post(EVENTS + "add/", {"message_id": "forged"}).status_code == 403
    assert (
        admin_client.post(
            f"{EVENTS}{event.pk}/change/", {"user_id": "mallory", "_save": "Save"}
        ).status_code
        == 403
    )
    assert admin_client.get(f"{EVENTS}{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        EVENTS, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)  # no such action: nothing happens
    assert "delete_selected" not in admin_client.get(EVENTS).content.decode()

    assert list(Event.objects.order_by("pk").values()) == before
    index = admin_client.get("/admin/").content.decode()
    assert f'href="{EVENTS}add/"' not in index


def staff_client(*permissions: str) -> Client:
    """A logged-in staff member holding only these permissions (codenames)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("staff", password="unused-password-0123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


def test_view_only_staff_cannot_run_the_source_actions(make_source):
    created = make_source("Guarded")
    client = staff_client("view_source")
    assert client.get(SOURCES).status_code == 200
    for action in ("rotate_write_key", "disable"):
        response = client.post(
            SOURCES, {"action": action, "_selected_action": [created.source.pk]}, follow=True
        )
        assert not WRITE_KEY.findall(response.content.decode())
    created.source.refresh_from_db()
    assert created.source.enabled
    assert track_status(created.write_key, "guarded-1") == 200


def test_staff_with_the_change_permission_can_rotate_a_key(make_source):
    created = make_source("Rotatable")
    client = staff_client("view_source", "change_source")
    response = client.post(
        SOURCES,
        {"action": "rotate_write_key", "_selected_action": [created.source.pk], "grace_hours": "0"},
        follow=True,
    )
    (new_key,) = WRITE_KEY.findall(response.content.decode())
    assert track_status(created.write_key, "rotatable-1") == 401
    assert track_status(new_key, "rotatable-2") == 200
