"""When PostgreSQL ends a web process's connection between requests (a server restart, a
failover, an idle timeout, ``pg_terminate_backend``), the next ingest request reconnects and
succeeds instead of failing: the ingest endpoints skip Django's per-request health check, so
the loss first shows in their own statement, which runs once more on a fresh connection."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
import requests
from django.db import OperationalError, connection, transaction
from psycopg import sql

from metrics_source.ingest.auth import write_key_cache_clear
from metrics_source.ingest.mapping import row_from_call
from metrics_source.ingest.service import events_store
from metrics_source.models import Event, Origin
from tests.conftest import basic_auth, cio_signature_headers, make_client
from tests.forwarding_support import worker_database_url
from tests.gunicorn_support import gunicorn


def _admin_url() -> str:
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=settings["HOST"] or "",
        port=str(settings["PORT"] or ""),
        user=settings["USER"] or "",
        password=settings["PASSWORD"] or "",
        dbname=settings["NAME"],
    )


def _end_sessions(column: str, value: object) -> list[int]:
    """End the sessions whose pg_stat_activity ``column`` is ``value``; wait until they are
    gone."""
    query = sql.SQL(
        "SELECT pid FROM pg_stat_activity WHERE {} = %s AND pid <> pg_backend_pid()"
    ).format(sql.Identifier(column))
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        pids = [row[0] for row in admin.execute(query, [value])]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # pg_terminate_backend only signals: wait until the sessions are gone.
        for _ in range(100):
            if not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
            ).fetchone():
                break
            time.sleep(0.05)
    return pids


def _end_our_session() -> int:
    """Have the server end this process's database session, as a restart would; return the
    ended session's backend pid."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    assert _end_sessions("pid", pid) == [pid]
    return pid


def _track_body() -> tuple[str, bytes]:
    message_id = f"loss-{uuid.uuid4()}"
    body = {"userId": "u1", "event": "Email Opened", "messageId": message_id,
            "properties": {"delivery_id": f"d-{uuid.uuid4()}"}}  # fmt: skip
    return message_id, orjson.dumps(body)


@pytest.fixture(params=["full stack", "fast path"])
def client(request):
    return make_client(request.param)


def test_track_after_the_session_was_ended_is_stored(transactional_db, client, make_source):
    created = make_source("loss")
    message_id, body = _track_body()
    # The first request caches the write key: the second request's only statement is the insert.
    _, first_body = _track_body()
    auth = basic_auth(created.write_key)
    first = client.post("/v1/track", first_body, "application/json", HTTP_AUTHORIZATION=auth)
    assert first.status_code == 200, first.content

    ended = _end_our_session()
    response = client.post("/v1/track", body, "application/json", HTTP_AUTHORIZATION=auth)

    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 1
    assert Event.objects.filter(message_id=message_id).count() == 1
    assert connection.connection.info.backend_pid != ended


def test_batch_after_the_session_was_ended_with_a_cold_key_cache(
    transactional_db, client, make_source
):
    # Nothing cached: the write-key lookup is the statement that meets the lost connection.
    created = make_source("loss-cold")
    write_key_cache_clear()
    ids = [f"loss-{uuid.uuid4()}" for _ in range(3)]
    body = orjson.dumps(
        {"batch": [{"userId": "u1", "event": "Email Sent", "messageId": m} for m in ids]}
    )
    connection.ensure_connection()
    _end_our_session()

    response = client.post(
        "/v1/batch", body, "application/json", HTTP_AUTHORIZATION=basic_auth(created.write_key)
    )

    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 3
    assert Event.objects.filter(message_id__in=ids).count() == 3


def test_webhook_after_the_session_was_ended_is_stored(transactional_db, client, make_source):
    created = make_source("loss-hook", secret="loss-secret")
    event_id = f"01LOSS{uuid.uuid4().hex[:20].upper()}"
    payload = {
        "event_id": event_id,
        "object_type": "email",
        "metric": "opened",
        "timestamp": int(time.time()),
        "data": {"customer_id": "u1", "delivery_id": "d1", "identifiers": {"id": "u1"}},
    }
    body = orjson.dumps(payload)
    connection.ensure_connection()
    _end_our_session()

    response = client.post(
        f"/webhooks/customerio/{created.source.slug}",
        body,
        "application/json",
        headers=cio_signature_headers("loss-secret", body),
    )

    assert response.status_code == 200, response.content
    assert Event.objects.filter(message_id=event_id).count() == 1


def test_inside_a_transaction_the_loss_is_raised_not_retried(transactional_db):
    # Other statements of the transaction went with the session: running this one alone on a
    # new connection would commit part of a transaction.
    _, row = row_from_call(
        {"type": "track", "userId": "u1", "event": "Email Sent", "messageId": "in-tx"},
        received_at=datetime.now(UTC),
        raw_json="{}",
    )
    connection.ensure_connection()
    try:
        with pytest.raises(OperationalError), transaction.atomic():
            _end_our_session()
            events_store(rows=[row], source=None, origin=Origin.TRACK)
    finally:
        connection.close()
    assert not Event.objects.filter(message_id="in-tx").exists()


# ------------------------------------------------------------------------------------------
# A real gunicorn
# ------------------------------------------------------------------------------------------


@pytest.fixture
def gunicorn_on_test_database(transactional_db, tmp_path):
    """gunicorn (one sync worker) serving the project on the test database; its database
    sessions carry an application name of their own, so the test can end exactly those."""
    app_name = f"conn-loss-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        # The suite's own URL (a TCP host or an embedded server's socket folder), on the test
        # database.
        "DATABASE_URL": worker_database_url(),
        "PGAPPNAME": app_name,  # libpq's default application_name for the server's sessions
        "DEBUG": "false",
    }
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        yield base, app_name


def test_gunicorn_answers_every_request_across_ended_sessions(
    gunicorn_on_test_database, make_source
):
    base, app_name = gunicorn_on_test_database
    created = make_source("loss-gunicorn", secret="loss-secret")
    headers = {"Authorization": basic_auth(created.write_key), "Content-Type": "application/json"}
    sent = []

    def track() -> int:
        message_id, body = _track_body()
        sent.append(message_id)
        return requests.post(f"{base}/v1/track", data=body, headers=headers, timeout=30).status_code

    def webhook() -> int:
        event_id = f"01LOSS{uuid.uuid4().hex[:20].upper()}"
        sent.append(event_id)
        body = orjson.dumps({"event_id": event_id, "object_type": "email", "metric": "opened",
                             "timestamp": int(time.time()), "data": {"delivery_id": "d1",
                             "identifiers": {"id": "u1"}, "customer_id": "u1"}})  # fmt: skip
        signed = {"Content-Type": "application/json", **cio_signature_headers("loss-secret", body)}
        url = f"{base}/webhooks/customerio/{created.source.slug}"
        return requests.post(url, data=body, headers=signed, timeout=30).status_code

    statuses = [track(), webhook()]
    for send in (track, webhook, track):
        assert _end_sessions("application_name", app_name), "the worker had no session"
        statuses += [send(), send()]

    assert statuses == [200] * 8
    assert Event.objects.filter(message_id__in=sent).count() == 8
