"""Bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length), as streaming clients
send them, through a real gunicorn: stored like any other, and held to the same size limits."""

from __future__ import annotations

import gzip
import http.client
import io
import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import pytest
from django.core.handlers.wsgi import WSGIRequest

from metrics_source.ingest.request_body import BodyError, read_raw_body
from metrics_source.models import Event
from tests.conftest import basic_auth, cio_signature_headers
from tests.forwarding_support import worker_database_url
from tests.gunicorn_support import gunicorn, web_front
from tests.payloads import track_call

WEBHOOK = orjson.dumps(
    {
        "metric": "sent",
        "event_id": "01E4C4CT6YDC7Y5M7FE1CHUNKD",
        "object_type": "email",
        "timestamp": int(time.time()),
        "data": {
            "action_id": 42,
            "broadcast_id": 9,
            "customer_id": "0200000001",
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdChunk",
            "identifiers": {"id": "42", "email": "test@example.com"},
            "recipient": "test@example.com",
        },
    }
)


@pytest.fixture(params=["gunicorn", "web front"])
def server(request, transactional_db, tmp_path) -> Iterator[str]:
    """A bare gunicorn (it reads the chunks itself) and the web front before it (the front
    reads them and passes the body on whole), as `make run` serves."""
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "DEBUG": "false"}
    serve = gunicorn if request.param == "gunicorn" else web_front
    with serve(env, tmp_path / "server.log") as base:
        yield base


def pieces(body: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def send_chunked(base: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        # An iterable body without a length: http.client sends it chunk by chunk.
        connection.request("POST", path, body=pieces(body), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_a_chunked_batch_is_stored(server, make_source):
    created = make_source("chunked")
    calls = [track_call("Email Opened", message_id=f"chunk-{n}") for n in range(20)]
    status, answer = send_chunked(
        server,
        "/v1/batch",
        orjson.dumps({"batch": calls}),
        {"Content-Type": "application/json", "Authorization": basic_auth(created.write_key)},
    )
    assert status == 200, answer
    assert answer["stored"] == 20
    assert Event.objects.filter(message_id__startswith="chunk-").count() == 20


def test_a_chunked_gzip_track_call_is_stored(server, make_source):
    created = make_source("chunked-gz")
    body = gzip.compress(orjson.dumps(track_call("Email Opened", message_id="chunk-gz")))
    status, answer = send_chunked(
        server,
        "/v1/track",
        body,
        {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": basic_auth(created.write_key),
        },
    )
    assert (status, answer["stored"]) == (200, 1), answer
    assert Event.objects.filter(message_id="chunk-gz").exists()


def test_a_chunked_signed_webhook_is_stored(server, make_source):
    created = make_source("chunked-hook", secret="chunk-secret")
    headers = {"Content-Type": "application/json", **cio_signature_headers("chunk-secret", WEBHOOK)}
    status, answer = send_chunked(
        server, f"/webhooks/customerio/{created.source.slug}", WEBHOOK, headers
    )
    assert status == 200, answer
    assert Event.objects.filter(message_id="01E4C4CT6YDC7Y5M7FE1CHUNKD").exists()


def test_a_chunked_body_over_the_limit_is_413_and_read_no_further():
    """What gunicorn hands Django for a chunked body: the decoded bytes, to be read until the
    end. Past the limit reading stops (one byte over), so a huge stream costs no memory."""
    limit = 1000
    stream = io.BytesIO(b"x" * 50_000)
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/batch",
            "wsgi.input": stream,
            "HTTP_TRANSFER_ENCODING": "chunked",
        }
    )
    with pytest.raises(BodyError) as refused:
        read_raw_body(request, limit=limit)
    assert refused.value.status == 413
    assert stream.tell() == limit + 1
    # Within the limit, the whole stream is the body.
    small = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/batch",
            "wsgi.input": io.BytesIO(b"{}"),
            "HTTP_TRANSFER_ENCODING": "chunked",
        }
    )
    assert read_raw_body(small, limit=limit) == b"{}"
