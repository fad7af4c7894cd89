"""An unmodified Segment SDK (segment-analytics-python) pointed at a live server just works:
its consumer thread batches the calls, POSTs /v1/batch over real HTTP, and every track call is
stored exactly once with the SDK's own messageId. The server is Django's live server (the full
middleware stack) and the project's own WSGI application (its fast path for the hot
endpoints), both on the test database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.signals import request_started
from django.test.testcases import QuietWSGIRequestHandler
from segment.analytics import Client
from segment.analytics import request as sdk_request

from metrics_source.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

TRACK_CALLS = 150  # more than one SDK batch (100 calls each)


class _QuietHandler(WSGIRequestHandler):
    timeout = 1  # an idle keep-alive connection ends, and with it its database session

    def log_message(self, format, *args):  # the test output is no access log
        pass


@pytest.fixture
def project_server(transactional_db) -> Iterator[str]:
    """metrics_source.wsgi.application over real HTTP on a free port, in threads of this
    process (so on the test database); yields its base URL."""
    from metrics_source.wsgi import application

    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(application)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(autouse=True)
def keep_alive_ends(monkeypatch) -> Iterator[None]:
    """The SDK keeps its HTTP connections open (in one module-wide session), and the server
    thread serving each one holds a database session until the connection ends: until the
    process ends, and then the test database cannot be dropped. So the servers close an idle
    connection after a second, as production servers do (gunicorn after 2 s), and the SDK's
    own connections are closed after each test."""
    monkeypatch.setattr(QuietWSGIRequestHandler, "timeout", 1)  # the live server's handler
    yield
    sdk_request._session.close()


@pytest.fixture(params=["live server", "project WSGI"])
def server_url(request) -> str:
    if request.param == "live server":
        return request.getfixturevalue("live_server").url
    return request.getfixturevalue("project_server")


@pytest.fixture
def requests_seen():
    """The path and encoding of each request the live server receives (read from its WSGI
    environ, so it is what really came over the wire)."""
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    def record(sender, environ, **kwargs):
        with lock:
            seen.append(
                {
                    "path": environ.get("PATH_INFO", ""),
                    "encoding": environ.get("HTTP_CONTENT_ENCODING", ""),
                    "authorization": environ.get("HTTP_AUTHORIZATION", ""),
                }
            )

    request_started.connect(record, weak=False)
    yield seen
    request_started.disconnect(record)


@pytest.mark.parametrize("use_gzip", [False, True], ids=["default", "gzip"])
def test_sdk_calls_are_stored_exactly_once(server_url, source, requests_seen, use_gzip):
    errors: list[Exception] = []
    options = {"gzip": True} if use_gzip else {}
    analytics = Client(
        source.write_key,
        host=server_url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,  # a failure must show up here, not be retried for minutes
        timeout=10,
        upload_interval=0.05,
        **options,
    )
    assert analytics.gzip is use_gzip
    happened_at = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    message_ids = []
    try:
        for i in range(TRACK_CALLS):
            ok, message = analytics.track(
                user_id=f"user-{i % 7}",
                event="Email Opened" if i % 2 else "Push Delivered",
                properties={"delivery_id": f"delivery-{i}", "campaign_id": 1000 + i},
                context={"traits": {"email": f"user-{i % 7}@example.com"}},
                timestamp=happened_at,
            )
            assert ok
            message_ids.append(message["messageId"])
        ok, identify = analytics.identify(user_id="user-1", traits={"plan": "pro"})
        assert ok
        analytics.flush()
    finally:
        analytics.shutdown()

    assert errors == []
    assert len(set(message_ids)) == TRACK_CALLS
    rows = {row.message_id: row for row in Event.objects.all()}
    assert sorted(rows) == sorted(message_ids)  # each once, and nothing else
    assert identify["messageId"] not in rows
    for i, message_id in enumerate(message_ids):
        row = rows[message_id]
        assert row.source_id == source.source.pk
        assert row.event == ("Email Opened" if i % 2 else "Push Delivered")
        assert (row.user_id, row.email) == (f"user-{i % 7}", f"user-{i % 7}@example.com")
        assert (row.delivery_id, row.campaign_id) == (f"delivery-{i}", 1000 + i)
        assert row.timestamp == happened_at
        assert row.sent_at is not None  # the SDK's batch-level sentAt applied to each call
        assert row.context["library"]["name"] == "analytics-python"

    uploads = [r for r in requests_seen if r["path"] == "/v1/batch"]
    assert len(uploads) >= 2, requests_seen
    assert len(uploads) == len(requests_seen)
    assert all(r["authorization"].startswith("Basic ") for r in uploads)
    assert {r["encoding"] for r in uploads} == {"gzip" if use_gzip else ""}


def test_sdk_with_an_unknown_key_gets_401_and_nothing_is_stored(server_url, source):
    errors: list[Exception] = []
    analytics = Client(
        "msk_not-a-real-key",
        host=server_url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
        timeout=10,
        upload_interval=0.05,
    )
    try:
        analytics.track(user_id="u", event="Email Opened", properties={"delivery_id": "d"})
        analytics.flush()
    finally:
        analytics.shutdown()
    [error] = errors
    assert error.status == 401
    assert "unknown write key" in error.response.json()["error"]
    assert not Event.objects.exists()
