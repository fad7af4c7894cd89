"""Outbound requests go only where the check looked: hostile URL spellings are refused, the
connection dials the address that was checked, and the timeout is a deadline for the whole
exchange (a receiver that drips bytes cannot hold a batch past its claim)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from metrics_source.forwarding.destinations import destination_create
from metrics_source.forwarding.http import post
from metrics_source.forwarding.kinds import OutboundRequest
from metrics_source.forwarding.ssrf import Target, UrlRefused, check_url
from tests.forwarding_support import receiver

PUBLIC = "93.184.215.14"


@pytest.fixture
def public_only(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = False
    settings.FORWARDING_ALLOWED_PORTS = (443,)


@pytest.mark.parametrize(
    "url",
    [
        # Parsers disagree on these: urlsplit sees the public host, urllib3 the first one.
        f"https://127.0.0.1:8203\\@{PUBLIC}/",
        f"https://127.0.0.1\\@{PUBLIC}/",
        f"https://{PUBLIC}\\.127.0.0.1/",
        # Credentials, and "@" tricks without them.
        f"https://user:password@{PUBLIC}/",
        f"https://@{PUBLIC}/",
        f"https://{PUBLIC}:443@127.0.0.1/",
        # Control characters, spaces, a fragment, non-ASCII.
        f"https://{PUBLIC}/\r\nHost: 127.0.0.1",
        f"https://{PUBLIC}/\t",
        f"https://{PUBLIC}/ x",
        f"https://{PUBLIC}/#fragment",
        "https://exämple.com/",
        # Numeric spellings the resolver reads as 127.0.0.1.
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://017700000001/",
        "https://1.1.1.1./",
        # Addresses inside the network.
        "https://127.0.0.1/",
        "https://0.0.0.0/",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://100.127.255.254/",
        "https://192.0.0.170/",
        "https://198.18.0.1/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fe80::1]/",
        "https://[fe80::1%25eth0]/",
        "https://[fc00::1]/",
        "https://[fd00:ec2::254]/",
        "https://[ff02::1]/",
        # IPv6 forms that carry an IPv4 address.
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[::127.0.0.1]/",
        "https://[2002:7f00:1::1]/",
        "https://[2002:a00:1::]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[64:ff9b:1::a00:1]/",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        # Schemes, ports.
        f"http://{PUBLIC}/",
        f"ftp://{PUBLIC}/",
        "file:///etc/passwd",
        f"gopher://{PUBLIC}/",
        f"https://{PUBLIC}:22/",
        f"https://{PUBLIC}:6379/",
        f"https://{PUBLIC}:0/",
        "https:///path",
        "https://localhost/",
    ],
)
def test_hostile_urls_are_refused(public_only, url):
    with pytest.raises(UrlRefused):
        check_url(url)


@pytest.mark.django_db
def test_a_destination_with_a_hostile_url_is_not_saved(public_only):
    with pytest.raises(UrlRefused):
        destination_create(name="x", kind="webhook", url=f"https://127.0.0.1:8203\\@{PUBLIC}/")


def test_a_public_url_reads_the_same_to_the_check_and_the_connection(public_only):
    target = check_url(f"HTTPS://{PUBLIC}/in?x=1")
    assert target == Target("https", PUBLIC, 443, "/in?x=1", (PUBLIC,))
    assert target.host_header == PUBLIC


def test_the_port_allow_list(public_only, settings):
    settings.FORWARDING_ALLOWED_PORTS = (443, 8443)
    assert check_url(f"https://{PUBLIC}:8443/").port == 8443
    with pytest.raises(UrlRefused, match="8444"):
        check_url(f"https://{PUBLIC}:8444/")


def test_with_private_networks_allowed_the_spelling_rules_still_hold(settings):
    settings.FORWARDING_ALLOW_PRIVATE_NETWORKS = True
    assert check_url("http://127.0.0.1:8080/hook").addresses == ("127.0.0.1",)
    for url in ("http://127.0.0.1:8080\\@example.com/", "http://u:p@127.0.0.1/", "http://0x7f.1/"):
        with pytest.raises(UrlRefused):
            check_url(url)


@contextmanager
def tcp_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A bare TCP port on loopback that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


@pytest.mark.django_db
def test_the_parser_difference_reaches_no_local_service(public_only):
    """The reviewer's reproduction, end to end through the test-event action's service."""
    from metrics_source.forwarding.models import Destination
    from metrics_source.forwarding.probe import destination_send_test

    with tcp_listener() as (port, accepted):
        url = f"https://127.0.0.1:{port}\\@{PUBLIC}/"
        # Stored as an older release could have stored it (its check passed it).
        destination = Destination.objects.create(name="old", kind="webhook", url=url, secret="")
        with pytest.raises(UrlRefused):
            destination_send_test(destination)
        time.sleep(0.3)
        assert accepted == []


def test_the_connection_dials_the_checked_address_not_the_name():
    """A name that resolves nowhere, with the checked address beside it: the request still
    arrives, so the connection never asked the resolver again, and the Host header keeps the
    name."""
    with receiver(lambda r, i: (200, {}, b"ok")) as target:
        port = int(target.url.rsplit(":", 1)[1])
        checked = Target("http", "receiver.invalid", port, "/in?a=1", ("127.0.0.1",))
        result = post(OutboundRequest(url="", body=b"{}", headers={}), target=checked, timeout=5)
    assert (result.status, result.error) == (200, "")
    (request,) = target.requests
    assert request.path == "/in?a=1"
    assert request.headers["host"] == f"receiver.invalid:{port}"


def test_a_dripping_receiver_is_cut_off_at_the_deadline():
    """The answer's status line arrives a byte every 0.2 s: with a 1 s timeout the request
    ends at the deadline, and the receiver sees its connection closed."""
    closed = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def drip() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 10:
                connection.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            closed.set()
        finally:
            connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    checked = Target("http", "127.0.0.1", port, "/", ("127.0.0.1",))
    started = time.monotonic()
    result = post(OutboundRequest(url="", body=b"{}", headers={}), target=checked, timeout=1)
    elapsed = time.monotonic() - started
    assert result.status is None
    assert "deadline" in result.error
    # The receiver's next byte fails: the connection was shut, not left to run on.
    assert closed.wait(10)
    thread.join(10)
    server.close()
    print(f"dripping receiver cut off after {elapsed:.2f} s (timeout 1 s)")
