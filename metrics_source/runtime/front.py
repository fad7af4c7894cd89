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
``X-Metrics-Source-Peer`` (removed from what the client sent). Only this user can open the
socket (its directory is private), so that header can be trusted: see
``metrics_source.access.addresses``.

Run it as ``python -m metrics_source.runtime.front --listen HOST:PORT --backend PATH``.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import signal
import socket
import sys
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger("metrics_source.front")

# The header in which the front names the client's address to gunicorn.
PEER_HEADER = "X-Metrics-Source-Peer"
PEER_META = "HTTP_X_METRICS_SOURCE_PEER"

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
_UNAVAILABLE_BODY = b'{"error": "the server could not answer (restarting?); retry shortly"}'

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


def _request_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The client's headers as gunicorn should see them: hop-by-hop ones and any peer header
    the client wrote itself dropped, the front's peer header added."""
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key in _UNPREFIXED:
            name = _UNPREFIXED[key]
        elif key.startswith("HTTP_") and key != PEER_META:
            name = key[5:].replace("_", "-").title()
        else:
            continue
        if name.lower() not in HOP_BY_HOP:
            headers.append((name, value))
    headers.append((PEER_HEADER, environ.get("REMOTE_ADDR", "")))
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

    def __init__(self, socket_path: str, *, timeout: float = BACKEND_TIMEOUT_SECONDS) -> None:
        self.socket_path = socket_path
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
            for name, value in _request_headers(environ):
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
    threads: int,
    connection_limit: int,
    max_body_bytes: int,
) -> BaseWSGIServer | MultiSocketServer:
    return waitress.create_server(
        BackendApp(backend),
        listen=listen,
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
        # The client's X-Forwarded-* headers go through untouched: the app decides whether
        # to believe them (BEHIND_TLS_PROXY), as it does without the front.
        clear_untrusted_proxy_headers=False,
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on")
    parser.add_argument("--backend", required=True, help="gunicorn's Unix socket path")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--connection-limit", type=int, default=1000)
    parser.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # "Task queue depth is N" each time requests wait for a thread: under a burst of ingest
    # that is normal (gunicorn is the limit, and its backlog the queue), not a warning.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = build_server(
        listen=options.listen,
        backend=options.backend,
        threads=options.threads,
        connection_limit=options.connection_limit,
        max_body_bytes=options.max_body_bytes,
    )

    def stop(signo: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"Web front listening at: http://{options.listen} (gunicorn behind it on "
        f"unix:{options.backend})",
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
