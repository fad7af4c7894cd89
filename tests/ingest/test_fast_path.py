"""The hot endpoints' fast path (metrics_source.ingest.fast_path) answers exactly as the full Django
stack does: same status, body, headers and stored rows, for good requests and every error."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory, override_settings

from metrics_source.ingest.fast_path import fast_endpoint
from metrics_source.models import Event
from tests.conftest import basic_auth, cio_signature_headers, make_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients() -> dict[str, Client]:
    return {"full": make_client("full stack"), "fast": make_client("fast path")}


def call(event="Email Opened", message_id=None, **fields):
    body = {"type": "track", "event": event, "userId": "u-1", "properties": {"delivery_id": "d"}}
    if message_id is not None:
        body["messageId"] = message_id
    return {**body, **fields}


# Each case: (path, body, headers) for a client kind; message ids that get stored carry the
# kind, so both clients store their own rows and get the same answer.
CASES = {
    "track": lambda kind, key: ("/v1/track", call(message_id=f"{kind}-t"), basic_auth(key)),
    "track without messageId": lambda kind, key: ("/v1/track", call(), basic_auth(key)),
    "batch with a rejected item": lambda kind, key: (
        "/v1/batch",
        {"batch": [call(message_id=f"{kind}-b1"), call(event="Nope", message_id="bad-1")]},
        basic_auth(key),
    ),
    "batch, strict mode": lambda kind, key: (
        "/v1/batch",
        {"batch": [call(message_id=f"{kind}-s1"), {"type": "track", "messageId": "bad-2"}]},
        {"Authorization": basic_auth(key), "X-Strict-Mode": "1"},
    ),
    "batch with context and identify": lambda kind, key: (
        "/v1/batch",
        {
            "batch": [
                call(message_id=f"{kind}-c1", timestamp="2024-06-01T08:29:59.5Z"),
                {"type": "identify", "userId": "u-1"},
            ],
            "context": {"library": {"name": "analytics-python"}},
            "sentAt": "2024-06-01T08:30:00Z",
        },
        basic_auth(key),
    ),
    "bearer": lambda kind, key: ("/v1/track", call(message_id=f"{kind}-br"), f"Bearer {key}"),
    "write key in the body": lambda kind, key: (
        "/v1/batch",
        {"batch": [call(message_id=f"{kind}-wk")], "writeKey": key},
        None,
    ),
    "unknown key": lambda kind, key: ("/v1/track", call(), basic_auth("msk_nobody")),
    "no key": lambda kind, key: ("/v1/track", call(), None),
    "malformed JSON": lambda kind, key: ("/v1/batch", b'{"batch": [', basic_auth(key)),
    "not an object": lambda kind, key: ("/v1/track", [1, 2], basic_auth(key)),
    "event over 32 KB": lambda kind, key: (
        "/v1/track",
        call(properties={"pad": "x" * 33_000}),
        basic_auth(key),
    ),
}


def send(client: Client, path: str, body, auth, **extra):
    headers = dict(auth) if isinstance(auth, dict) else ({"Authorization": auth} if auth else {})
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    content_type = extra.pop("content_type", "application/json")
    return client.post(path, data, content_type=content_type, headers=headers, **extra)


def comparable(response) -> tuple[int, object, dict[str, str]]:
    body = response.json() if response["Content-Type"].startswith("application/json") else None
    return response.status_code, body, dict(response.items())


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_fast_path_answers_as_the_full_stack(clients, source, case):
    answers = {}
    for kind, client in clients.items():
        path, body, auth = CASES[case](kind, source.write_key)
        answers[kind] = comparable(send(client, path, body, auth))
    assert answers["fast"] == answers["full"]


def test_the_same_rows_are_stored_both_ways(clients, source):
    for kind, client in clients.items():
        path, body, auth = CASES["batch with context and identify"](kind, source.write_key)
        assert send(client, path, body, auth).status_code == 200
    full, fast = (Event.objects.get(message_id=f"{kind}-c1") for kind in ("full", "fast"))
    skip = {"_state", "id", "message_id", "received_at", "raw"}
    assert {k: v for k, v in vars(fast).items() if k not in skip} == {
        k: v for k, v in vars(full).items() if k not in skip
    }


def test_disabled_source_wrong_type_gzip_and_bad_gzip(clients, make_source):
    disabled = make_source(name="off", enabled=False)
    live = make_source(name="on")
    answers = {}
    for kind, client in clients.items():
        key = basic_auth(live.write_key)
        zipped = gzip.compress(orjson.dumps({"batch": [call(message_id=f"{kind}-gz")]}))
        answers[kind] = [
            comparable(send(client, "/v1/track", call(), basic_auth(disabled.write_key))),
            comparable(send(client, "/v1/track", b"event=1", key, content_type="text/plain")),
            comparable(send(client, "/v1/batch", zipped, key, HTTP_CONTENT_ENCODING="gzip")),
            comparable(send(client, "/v1/batch", b"not gzip", key, HTTP_CONTENT_ENCODING="gzip")),
        ]
    assert [status for status, _, _ in answers["fast"]] == [403, 415, 200, 400]
    assert answers["fast"] == answers["full"]


def test_a_host_outside_allowed_hosts_is_refused_both_ways(clients, source):
    answers = {}
    for kind, client in clients.items():
        response = send(
            client, "/v1/track", call(message_id=f"{kind}-h"), basic_auth(source.write_key),
            HTTP_HOST="attacker.example",
        )  # fmt: skip
        answers[kind] = comparable(response)
    # JSON naming the host and the setting, as every other API error (the full stack's later
    # middleware add a header or two to this answer; the fast path has none after it).
    assert answers["fast"][:2] == answers["full"][:2]
    status, body, headers = answers["fast"]
    assert (status, headers["Content-Type"]) == (400, "application/json")
    error = body["error"]
    assert "'attacker.example'" in error and "ALLOWED_HOSTS" in error
    assert not Event.objects.filter(message_id__in=["full-h", "fast-h"]).exists()


@override_settings(DEBUG=True)
def test_with_debug_on_a_refused_host_is_still_json_for_api_clients(clients, source):
    # Django's debug page replaces its 400 handler with DEBUG on; API clients get JSON anyway.
    for client in clients.values():
        response = send(
            client, "/v1/batch", {"batch": [call()]}, basic_auth(source.write_key),
            HTTP_HOST="attacker.example",
        )  # fmt: skip
        assert (response.status_code, response["Content-Type"]) == (400, "application/json")
        assert "'attacker.example'" in response.json()["error"]


def test_a_page_for_a_host_outside_allowed_hosts_is_still_html(client):
    response = client.get("/", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_the_fast_path_skips_the_middleware_chain(clients, source):
    # SessionMiddleware gives every request it sees a session: the fast path's never saw it.
    auth = basic_auth(source.write_key)
    full = send(clients["full"], "/v1/track", call(message_id="m-full"), auth)
    fast = send(clients["fast"], "/v1/track", call(message_id="m-fast"), auth)
    assert hasattr(full.wsgi_request, "session")
    assert not hasattr(fast.wsgi_request, "session")
    body = orjson.dumps(
        {"event_id": "w-1", "object_type": "email", "metric": "opened", "timestamp": 1_700_000_000,
         "data": {"customer_id": "u-1", "delivery_id": "d-1", "identifiers": {"id": "u-1"}}}
    )  # fmt: skip
    webhook = clients["fast"].post(
        f"/webhooks/customerio/{source.source.slug}",
        body,
        content_type="application/json",
        headers=cio_signature_headers(source.secret, body),
    )
    assert webhook.status_code == 200, webhook.content
    assert not hasattr(webhook.wsgi_request, "session")
    # Anything else goes through the full stack on the fast client too.
    identify = send(clients["fast"], "/v1/identify", {"userId": "u"}, auth)
    assert identify.status_code == 200 and hasattr(identify.wsgi_request, "session")
    wrong_method = clients["fast"].get("/v1/track")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"].startswith("method not allowed")


def test_which_requests_take_the_fast_path(settings):
    factory = RequestFactory()
    assert fast_endpoint(factory.post("/v1/track")) is not None
    assert fast_endpoint(factory.post("/v1/batch")) is not None
    assert fast_endpoint(factory.get("/v1/track")) is None
    assert fast_endpoint(factory.post("/v1/track/")) is None
    assert fast_endpoint(factory.post("/v1/identify")) is None
    assert fast_endpoint(factory.post("/webhooks/customerio/main")) is not None
    assert fast_endpoint(factory.post("/webhooks/customerio/")) is None
    assert fast_endpoint(factory.post("/webhooks/customerio/main/extra")) is None
    settings.SECURE_SSL_REDIRECT = True  # the redirect is SecurityMiddleware's: keep it
    assert fast_endpoint(factory.post("/v1/track")) is None


# ------------------------------------------------------------------------------------------
# The chain the fast path stands in for is the one configured
# ------------------------------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parents[2]
# Django's own, not in the project's chain: it would compress the pages and, silently, not
# the hot endpoints' answers.
ADDED = "django.middleware.gzip.GZipMiddleware"
CHAIN = list(django_settings.MIDDLEWARE)


@pytest.mark.parametrize(
    ("middleware", "named"),
    [
        ([*CHAIN, ADDED], f"has {ADDED}, which the ingest fast path"),
        ([ADDED, *CHAIN], f"has {ADDED}, which the ingest fast path"),
        (
            [m for m in CHAIN if not m.endswith(".XFrameOptionsMiddleware")],
            "no longer has django.middleware.clickjacking.XFrameOptionsMiddleware",
        ),
        ([CHAIN[-1], *CHAIN[:-1]], "in another order"),
    ],
    ids=["added last", "added first", "removed", "reordered"],
)
def test_a_changed_middleware_chain_stops_the_fast_path_handler(source, middleware, named):
    with override_settings(MIDDLEWARE=middleware):
        # The full stack is the plain Django handler: it serves whatever chain is configured.
        assert make_client("full stack").get("/healthz").status_code in (200, 503)
        client = make_client("fast path")
        with pytest.raises(ImproperlyConfigured, match=named):
            send(client, "/v1/track", call(message_id="m-refused"), basic_auth(source.write_key))
    assert not Event.objects.filter(message_id="m-refused").exists()


def _start_wsgi_application(tmp_path: Path, middleware_line: str) -> subprocess.CompletedProcess:
    """Import the WSGI application (what gunicorn does when it starts) under the project's
    settings with one line added."""
    (tmp_path / "changed_settings.py").write_text(
        f"from metrics_source.settings import *  # noqa: F403\n{middleware_line}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "changed_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)]),
    }
    return subprocess.run(
        [sys.executable, "-c", "import metrics_source.wsgi"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_wsgi_application_refuses_to_start_with_a_middleware_it_would_skip(tmp_path):
    unchanged = _start_wsgi_application(tmp_path, "")
    assert unchanged.returncode == 0, unchanged.stderr
    added = _start_wsgi_application(tmp_path, f"MIDDLEWARE = [*MIDDLEWARE, {ADDED!r}]")
    assert added.returncode != 0
    last_line = added.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert ADDED in last_line and "/v1/track" in last_line
