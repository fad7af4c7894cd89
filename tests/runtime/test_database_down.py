"""With PostgreSQL unreachable, a real gunicorn serving the project answers 503 with a JSON error,
never 2xx (the sender must retry), and gives away no secret. Pages and the admin answer a 503
page saying so, with Retry-After, with DEBUG off and on (no traceback, no secret)."""

from __future__ import annotations

import gzip
import os
import socket

import orjson
import pytest
import requests

from tests.conftest import basic_auth, cio_signature_headers
from tests.gunicorn_support import gunicorn

DB_PASSWORD = "db-pa55word-never-shown"
WRITE_KEY = "msk_write-key-never-shown-0123456789"
WEBHOOK_SECRET = "cio-secret-never-shown"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from refused_database_server(tmp_path_factory, debug=False)


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory):
    yield from refused_database_server(tmp_path_factory, debug=True)


def refused_database_server(tmp_path_factory, *, debug: bool):
    """gunicorn on a free port whose DATABASE_URL names a loopback port that refuses
    connections (bound, never listening, held for the whole module)."""
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    database_url = (
        f"postgres://metrics:{DB_PASSWORD}@127.0.0.1:{refusing.getsockname()[1]}/metrics_source"
    )
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "true" if debug else "false",
        "DATABASE_CONNECT_TIMEOUT": "2",
    }
    try:
        with gunicorn(env, log_path, "--timeout", "30") as base:
            yield base, database_url, log_path
    finally:
        refusing.close()


def assert_503_without_secrets(response, database_url):
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.text
    for secret in (
        DB_PASSWORD,
        WRITE_KEY,
        WEBHOOK_SECRET,
        database_url,
        database_url.rsplit(":", 1)[1],
    ):
        assert secret not in text
    return response.json()


def test_batch_is_503_not_2xx(server):
    base, database_url, _ = server
    body = {"batch": [{"type": "track", "event": "Email Sent", "userId": "u", "messageId": "m"}]}
    response = requests.post(
        f"{base}/v1/batch",
        data=orjson.dumps(body),
        timeout=30,
        headers={"Authorization": basic_auth(WRITE_KEY), "Content-Type": "application/json"},
    )
    answer = assert_503_without_secrets(response, database_url)
    assert "database" in answer["error"]
    assert response.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("path", ["/v1/track", "/v1/identify"])
def test_other_tracking_calls_are_503(server, path):
    base, database_url, _ = server
    body = {"type": "track", "event": "Email Sent", "userId": "u", "writeKey": WRITE_KEY}
    response = requests.post(
        f"{base}{path}",
        data=gzip.compress(orjson.dumps(body)),
        timeout=30,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert "database" in assert_503_without_secrets(response, database_url)["error"]


def test_webhook_is_503(server):
    base, database_url, _ = server
    payload = orjson.dumps(
        {
            "event_id": "01HDOWN",
            "object_type": "email",
            "metric": "sent",
            "timestamp": 1717230000,
            "data": {"delivery_id": "d"},
        }
    )
    headers = {"Content-Type": "application/json", **cio_signature_headers(WEBHOOK_SECRET, payload)}
    response = requests.post(
        f"{base}/webhooks/customerio/main", data=payload, headers=headers, timeout=30
    )
    assert "database" in assert_503_without_secrets(response, database_url)["error"]


def test_healthz_is_503_naming_the_database(server):
    base, database_url, _ = server
    response = requests.get(f"{base}/healthz", timeout=30)
    answer = assert_503_without_secrets(response, database_url)
    assert answer["status"] == "unavailable"
    assert answer["database"].startswith("down")
    assert answer["broker"] == "ok"


def test_the_server_log_keeps_the_secrets_too(server):
    base, database_url, log_path = server
    requests.post(
        f"{base}/v1/batch",
        data=b'{"batch": []}',
        timeout=30,
        headers={"Authorization": basic_auth(WRITE_KEY), "Content-Type": "application/json"},
    )
    log = log_path.read_text()
    assert "Service Unavailable" in log  # the failures are logged...
    for secret in (DB_PASSWORD, WRITE_KEY, database_url):
        assert secret not in log  # ...without what must stay private


# A session cookie makes the session (and the user) a database lookup on every page.
SESSION_COOKIE = {"sessionid": "a" * 32}


def assert_503_page(response, database_url):
    assert response.status_code == 503, response.text[:2000]
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Retry-After"].isdigit()
    text = response.text
    assert "The database is unavailable" in text
    assert "retry shortly" in text
    for leak in ("Traceback", "OperationalError", "127.0.0.1", DB_PASSWORD, database_url):
        assert leak not in text


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin/metrics_source/event/"])
def test_admin_pages_with_a_session_are_a_503_page(server, path):
    base, database_url, _ = server
    response = requests.get(
        f"{base}{path}", cookies=SESSION_COOKIE, timeout=30, allow_redirects=False
    )
    assert_503_page(response, database_url)


def test_a_dashboard_page_is_a_503_page(server):
    base, database_url, _ = server
    response = requests.get(f"{base}/", cookies=SESSION_COOKIE, timeout=30, allow_redirects=False)
    assert_503_page(response, database_url)


def test_with_debug_on_the_page_is_the_503_page_too(debug_server):
    base, database_url, _ = debug_server
    response = requests.get(
        f"{base}/admin/", cookies=SESSION_COOKIE, timeout=30, allow_redirects=False
    )
    assert_503_page(response, database_url)
