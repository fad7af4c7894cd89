"""The web front: a buffering HTTP server before gunicorn's sync workers.

A sync worker serves one connection at a time, from its first byte to its last: a client
that sends a byte every few seconds holds it for as long as it likes, and a handful of them
hold them all (``/healthz`` then times out). Here waitress reads each request whole in its
event loop, which costs a slow client a socket and a buffer, never a thread, and only then
hands it to a thread that passes it to gunicorn over a private Unix socket, where it is read
at memory speed. Answers come back the same way: waitress buffers them (to a temporary file
past a megabyte) and feeds the client at the client's pace, so a slow reader holds no worker
either. This is the job nginx's request and response buffering does before gunicorn; waitress
is a maintained pure-Python server that does the same, so ``make run`` needs nothing but
Python.

gunicorn sees every request from the Unix socket; the front tells it who sent it in
``X-Metrics-Source-Peer``, beside ``X-Metrics-Source-Front`` carrying a random token of this
run (``METRICS_SOURCE_FRONT_TOKEN``, given by serve to the front and to gunicorn); both are
removed from what the client sent. The app believes the peer header only with that token (see
``metrics_source.access.addresses``), so a Unix socket that is not this front's (gunicorn run
by hand behind another proxy) cannot be told an address by its clients.

gunicorn treats every Unix-socket peer as a trusted proxy and takes the scheme from
``X-Forwarded-Proto`` (and -Ssl, -Protocol): the front drops those unless told the TLS proxy
before it sets them (``--trust-forwarded-proto``, from ``BEHIND_TLS_PROXY``), so a client
cannot make a plain-HTTP request pass for HTTPS.

Run it as ``python -m metrics_source.runtime.front --listen HOST:PORT --backend PATH``.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger("metrics_source.front")

# The headers in which the front names the client's address to gunicorn, and proves it is
# the front; the token comes from the environment serve gives both.
PEER_HEADER = "X-Metrics-Source-Peer"
PEER_META = "HTTP_X_METRICS_SOURCE_PEER"
TOKEN_HEADER = "X-Metrics-Source-Front"  # noqa: S105 (a header name, not a secret)
TOKEN_META = "HTTP_X_METRICS_SOURCE_FRONT"  # noqa: S105
TOKEN_VARIABLE = "METRICS_SOURCE_FRONT_TOKEN"  # noqa: S105
# What the front alone may write: a client's copies never reach gunicorn.
_FRONT_ONLY = frozenset({PEER_META, TOKEN_META})
# The scheme headers gunicorn believes from a Unix-socket peer (its secure_scheme_headers).
_SCHEME_META = frozenset(
    {"HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SSL", "HTTP_X_FORWARDED_PROTOCOL"}
)

# Headers of one connection, not of the request or the answer (RFC 9110, 7.6.1): each side
# of the front has its own. Content-Length is recomputed from the buffered body.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# WSGI names of the headers that have no HTTP_ prefix.
# Content-Length is not copied: it is set from the buffered body.
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type"}

# The answer to give while gunicorn is not there (restarting after a crash): senders retry a
# 503, and nothing was stored, so nothing is lost.
_UNAVAILABLE_BODY = (
    b'{"error": "the server could not answer (restarting?); retry shortly: an event sent '
    b'again is stored once"}'
)

# How long a request may take in gunicorn before the front gives up on it; above gunicorn's
# own worker timeout (30 s), which ends a stuck request first.
BACKEND_TIMEOUT_SECONDS = 120

# Read from gunicorn and handed to waitress in pieces of this size: a streamed CSV export
# keeps constant memory through the front.
_CHUNK = 64 * 1024


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: gunicorn's private listening socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _request_headers(
    environ: dict[str, Any], *, token: str, trust_forwarded_proto: bool
) -> list[tuple[str, str]]:
    """The client's headers as gunicorn should see them: hop-by-hop ones (and those the
    Connection header names), the front's own and, unless trusted, the scheme headers
    dropped; the front's peer and token headers added."""
    listed = {
        name.strip().lower() for name in environ.get("HTTP_CONNECTION", "").split(",") if name
    }
    dropped = _FRONT_ONLY if trust_forwarded_proto else _FRONT_ONLY | _SCHEME_META
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key in _UNPREFIXED:
            name = _UNPREFIXED[key]
        elif key.startswith("HTTP_") and key not in dropped:
            name = key[5:].replace("_", "-").title()
        else:
            continue
        if name.lower() not in HOP_BY_HOP and name.lower() not in listed:
            headers.append((name, value))
    headers.append((PEER_HEADER, environ.get("REMOTE_ADDR", "")))
    headers.append((TOKEN_HEADER, token))
    return headers


def _answer_headers(response: http.client.HTTPResponse) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in response.getheaders()
        if name.lower() not in HOP_BY_HOP and name.lower() != "server"
    ]


def _body_of(response: http.client.HTTPResponse, connection: _UnixConnection) -> Iterator[bytes]:
    try:
        while chunk := response.read(_CHUNK):
            yield chunk
    finally:
        connection.close()


class BackendApp:
    """The WSGI application waitress runs: each buffered request goes to gunicorn on
    ``socket_path`` (a fresh connection per request: sync workers close each one anyway)."""

    def __init__(
        self,
        socket_path: str,
        *,
        token: str,
        trust_forwarded_proto: bool = False,
        timeout: float = BACKEND_TIMEOUT_SECONDS,
    ) -> None:
        self.socket_path = socket_path
        self.token = token
        self.trust_forwarded_proto = trust_forwarded_proto
        self.timeout = timeout

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.putrequest(
                environ["REQUEST_METHOD"],
                environ.get("REQUEST_URI") or "/",
                skip_host=True,
                skip_accept_encoding=True,
            )
            headers = _request_headers(
                environ, token=self.token, trust_forwarded_proto=self.trust_forwarded_proto
            )
            for name, value in headers:
                connection.putheader(name, value)
            if body or environ["REQUEST_METHOD"] in {"POST", "PUT", "PATCH"}:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            log.warning("the web front could not reach gunicorn: %s", error)
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_UNAVAILABLE_BODY))),
                    ("Retry-After", "1"),
                ],
            )
            return [_UNAVAILABLE_BODY]
        start_response(f"{response.status} {response.reason}", _answer_headers(response))
        return _body_of(response, connection)


def build_server(
    *,
    listen: str,
    backend: str,
    token: str,
    trust_forwarded_proto: bool,
    threads: int,
    connection_limit: int,
    max_body_bytes: int,
) -> BaseWSGIServer | MultiSocketServer:
    """``listen`` is HOST:PORT or ``unix:PATH``."""
    where: dict[str, Any] = (
        {"unix_socket": listen.removeprefix("unix:"), "unix_socket_perms": "660"}
        if listen.startswith("unix:")
        else {"listen": listen}
    )
    return waitress.create_server(
        BackendApp(backend, token=token, trust_forwarded_proto=trust_forwarded_proto),
        **where,
        threads=threads,
        # Slow clients cost a socket each, so many may wait at once; poll() has no
        # 1,024-descriptor ceiling as select() has.
        connection_limit=connection_limit,
        asyncore_use_poll=True,
        # Idle keep-alive connections go after this; requests in progress are unaffected.
        channel_timeout=60,
        # Larger bodies never reach gunicorn (the API's own limits are lower and answer 413
        # with their reason).
        max_request_body_size=max_body_bytes,
        ident="metrics-source",
        # A batch is tens of kilobytes: read it in few system calls (the default is 8 KB).
        recv_bytes=65536,
        # An answer waits for its client in waitress' buffer, on disk past outbuf_overflow
        # (1 MB), never in a thread: at the default watermark (16 MB) a thread, and the
        # gunicorn worker it reads from, would wait on a client slow to read a large export.
        outbuf_high_watermark=1 << 40,
        # X-Forwarded-For goes through untouched: the app decides whether to believe it
        # (BEHIND_TLS_PROXY), as it does without the front. The scheme headers are handled
        # in _request_headers.
        clear_untrusted_proxy_headers=False,
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT (or unix:PATH) to serve on")
    parser.add_argument("--backend", required=True, help="gunicorn's Unix socket path")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--connection-limit", type=int, default=1000)
    parser.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    parser.add_argument(
        "--trust-forwarded-proto",
        action="store_true",
        help="pass X-Forwarded-Proto on (a TLS proxy before the front sets it)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # "Task queue depth is N" each time requests wait for a thread: under a burst of ingest
    # that is normal (gunicorn is the limit, and its backlog the queue), not a warning.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise SystemExit(f"{TOKEN_VARIABLE} is not set (manage.py serve sets it)")
    server = build_server(
        listen=options.listen,
        backend=options.backend,
        token=token,
        trust_forwarded_proto=options.trust_forwarded_proto,
        threads=options.threads,
        connection_limit=options.connection_limit,
        max_body_bytes=options.max_body_bytes,
    )

    def stop(signo: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = options.listen if options.listen.startswith("unix:") else f"http://{options.listen}"
    print(
        f"Web front listening at: {shown} (gunicorn behind it on unix:{options.backend})",
        flush=True,
    )
    try:
        server.run()
    finally:
        server.close()
        # Requests already handed to a thread finish; queued ones are dropped unanswered
        # (their clients retry, and gunicorn never saw them).
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=10)


if __name__ == "__main__":
    main(sys.argv[1:])
