"""The web front before gunicorn, as `make run` and the container run it: slow clients (a
byte every second, for ever) and a client that never reads its answer hold no worker, so
``/healthz`` and real requests are still answered; the same slow clients against a bare
gunicorn sync worker starve it (the finding this fixes). Through the front, requests arrive
as sent (headers, chunked bodies, signatures), and the address recorded for a sign-in is the
client's, whatever header the client writes.

The 10-second bound below only tells "answered" from "starved" (a starved worker never
answers while the slow clients last); how fast ``/healthz`` answers is measured by
bench/slow_clients.py, not asserted here."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from django.templatetags.static import static

from metrics_source.access.models import AuditAction, AuditEntry
from metrics_source.models import Event
from tests.conftest import basic_auth, cio_signature_headers
from tests.forwarding_support import worker_database_url
from tests.gunicorn_support import gunicorn, web_front
from tests.payloads import track_call

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 20
ANSWERED_WITHIN = 10  # seconds: far above any answer, far below the slow clients' life


@pytest.fixture
def project_env(transactional_db) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": worker_database_url(), "DEBUG": "false"}


@pytest.fixture
def front(project_env, tmp_path) -> Iterator[str]:
    with web_front(project_env, tmp_path / "serve.log") as base:
        yield base


@contextmanager
def slow_clients(base: str, count: int) -> Iterator[None]:
    """``count`` connections, each sending a request head and then one body byte a second
    (a 100,000-byte body: they would take a day), until the block ends."""
    address = urlsplit(base)
    stop = threading.Event()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((address.hostname, address.port), timeout=5)
        sock.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        sockets.append(sock)

    def drip() -> None:
        while not stop.wait(1):
            for sock in sockets:
                with suppress(OSError):  # the server closed it: not holding anything either
                    sock.sendall(b" ")

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield
    finally:
        stop.set()
        dripper.join(5)
        for sock in sockets:
            sock.close()


def test_twenty_slow_clients_do_not_starve_the_front(front, make_source):
    created = make_source("Slow clients")
    with slow_clients(front, SLOW_CLIENTS):
        for _ in range(5):
            health = requests.get(f"{front}/healthz", timeout=ANSWERED_WITHIN)
            assert health.status_code == 200, health.text
        batch = requests.post(
            f"{front}/v1/batch",
            data=orjson.dumps(
                {"batch": [track_call("Email Opened", message_id="beside-the-slow-ones")]}
            ),
            headers={
                "Content-Type": "application/json",
                "Authorization": basic_auth(created.write_key),
            },
            timeout=ANSWERED_WITHIN,
        )
        assert batch.status_code == 200, batch.text
    assert Event.objects.filter(message_id="beside-the-slow-ones").count() == 1


def test_the_same_slow_clients_starve_a_bare_sync_worker(project_env, tmp_path):
    """The control: without the front, one sync worker is held by the first slow client."""
    with ExitStack() as stack:
        base = stack.enter_context(gunicorn(project_env, tmp_path / "gunicorn.log"))
        stack.enter_context(slow_clients(base, 3))
        with pytest.raises(requests.Timeout):
            requests.get(f"{base}/healthz", timeout=ANSWERED_WITHIN)


def clients_that_never_read(base: str, stack: ExitStack, count: int = 4) -> None:
    """``count`` clients each asking for plotly.js (megabytes) and never reading a byte."""
    address = urlsplit(base)
    path = static("plotly/plotly.min.js")
    assert requests.head(f"{base}{path}", timeout=30).status_code == 200
    for _ in range(count):
        sock = stack.enter_context(
            socket.create_connection((address.hostname, address.port), timeout=5)
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


def test_a_client_that_never_reads_its_answer_holds_no_worker(front):
    with ExitStack() as stack:
        clients_that_never_read(front, stack)
        for _ in range(3):
            assert requests.get(f"{front}/healthz", timeout=ANSWERED_WITHIN).status_code == 200


def test_the_same_readers_hold_a_bare_sync_worker(project_env, tmp_path):
    """The control: a bare sync worker writes the answer itself, and waits on the reader."""
    with ExitStack() as stack:
        base = stack.enter_context(gunicorn(project_env, tmp_path / "gunicorn.log"))
        clients_that_never_read(base, stack)
        with pytest.raises(requests.Timeout):
            requests.get(f"{base}/healthz", timeout=ANSWERED_WITHIN)


def test_requests_pass_through_the_front_as_sent(front, make_source):
    created = make_source("Through the front", secret="front-secret")
    body = orjson.dumps(
        {
            "event_id": "01HFRONT00000000000000001",
            "object_type": "email",
            "metric": "opened",
            "timestamp": 1700000000,
            "data": {"delivery_id": "d-front", "identifiers": {"id": "7"}},
        }
    )
    signed = requests.post(
        f"{front}/webhooks/customerio/{created.source.slug}",
        data=body,
        headers={"Content-Type": "application/json", **cio_signature_headers("front-secret", body)},
        timeout=30,
    )
    assert signed.status_code == 200, signed.text
    # A chunked body (no Content-Length): the front reads it whole and passes it on.
    chunked = requests.post(
        f"{front}/v1/batch",
        data=iter(
            [
                b'{"batch": [',
                orjson.dumps(track_call("Email Opened", message_id="chunked-front")),
                b"]}",
            ]
        ),
        headers={
            "Content-Type": "application/json",
            "Authorization": basic_auth(created.write_key),
        },
        timeout=30,
    )
    assert chunked.status_code == 200, chunked.text
    assert set(Event.objects.values_list("message_id", flat=True)) == {
        "01HFRONT00000000000000001",
        "chunked-front",
    }
    # Errors keep their status and body; the answer names no server software.
    refused = requests.post(f"{front}/v1/batch", data=b"{}", timeout=30)
    assert refused.status_code == 401 and "error" in refused.json()
    assert refused.headers["Server"] == "metrics-source"


def test_the_recorded_address_is_the_clients_whatever_it_writes(front, admin_user):
    session = requests.Session()
    form = session.get(f"{front}/admin/login/", timeout=30)
    assert form.status_code == 200
    session.post(
        f"{front}/admin/login/",
        data={
            "username": admin_user.username,
            "password": "wrong-password",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={
            "Referer": f"{front}/admin/login/",
            # A client naming itself another address, as the front names the peer.
            "X-Metrics-Source-Peer": "203.0.113.9",
        },
        timeout=30,
    )
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_FAILED)
    assert entry.ip_address == "127.0.0.1"


def test_a_client_cannot_make_plain_http_pass_for_https(front, admin_client, make_source):
    """gunicorn believes X-Forwarded-Proto from any Unix-socket peer; the front drops it
    (BEHIND_TLS_PROXY is off), so the webhook URL the admin builds stays http."""
    make_source("Scheme")
    session = requests.Session()
    form = session.get(f"{front}/admin/login/", timeout=30)
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="admin").update(is_staff=True, is_superuser=True)
    user = get_user_model().objects.get(username="admin")
    user.set_password("front-admin-password")
    user.save()
    session.post(
        f"{front}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": "front-admin-password",
            "next": "/admin/",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{front}/admin/login/"},
        timeout=30,
    )
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Ssl": "on",
        "Connection": "keep-alive, X-Forwarded-Protocol",
        "X-Forwarded-Protocol": "https",
    }
    page = session.get(f"{front}/admin/metrics_source/source/", headers=forged, timeout=30)
    assert page.status_code == 200 and form.status_code == 200
    shown = page.text.replace("<wbr>", "")  # the URL may wrap after each slash
    assert f"{front}/webhooks/customerio/scheme" in shown
    assert "https://127.0.0.1" not in shown
