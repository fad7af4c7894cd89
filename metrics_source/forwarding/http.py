"""Outbound HTTP: connection pools kept per worker process, a timeout on every request, no
redirects followed, no retries inside the client (the ledger retries).

Each request goes to an address ``ssrf.check_url`` checked: the pool is keyed by it, and its
connections dial it instead of resolving the name again, while the Host header, TLS SNI and
the certificate check use the name.

The destination's timeout is a deadline for the whole exchange: urllib3's timeouts bound
each socket operation, so a receiver that drips a byte a second would hold a request (and
the batch's claim) for as long as it likes. A timer shuts the request's socket down when the
deadline passes, which ends whatever read is waiting."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from metrics_source.forwarding.kinds import OutboundRequest
from metrics_source.forwarding.ssrf import Target

EXCERPT_BYTES = 1000
_READ_LIMIT = 64 * 1024
# Pools kept per process (least recently used dropped first), each with a few connections.
_MAX_POOLS = 50
_CONNECTIONS_PER_POOL = 4


class _Deadline:
    """Shuts down the sockets of the connections it watches once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                _shut(connection)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _Pinned:
    """Dials the checked address; everything else about the request uses the host name. The
    request's deadline (if any) watches the connection from its first byte sent."""

    def __init__(self, *args: Any, checked_address: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dns_host = checked_address

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


# Created lazily per key, so each forked worker process gets its own sockets.
_pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = OrderedDict()


def _pool(target: Target, address: str) -> urllib3.HTTPConnectionPool:
    key = (target.scheme, target.host, target.port, address)
    pool = _pools.get(key)
    if pool is None:
        cls = _PinnedHTTPSPool if target.scheme == "https" else _PinnedHTTPPool
        pool = cls(
            target.host,
            target.port,
            maxsize=_CONNECTIONS_PER_POOL,
            retries=False,
            checked_address=address,
        )
        _pools[key] = pool
        while len(_pools) > _MAX_POOLS:
            _pools.popitem(last=False)[1].close()
    _pools.move_to_end(key)
    return pool


@dataclass(slots=True)
class HttpResult:
    status: int | None
    excerpt: str
    retry_after: str | None
    error: str
    duration_ms: float


def post(request: OutboundRequest, *, target: Target, timeout: float) -> HttpResult:
    """POST ``request`` to ``target`` (``check_url(request.url)``): to its first address, and
    to the next only when a connection cannot be made at all."""
    started = time.perf_counter()
    deadline = _Deadline(timeout)
    _current.deadline = deadline
    try:
        result = _post(request, target=target, timeout=timeout)
    finally:
        _current.deadline = None
        deadline.cancel()
    if deadline.expired and not result.error:
        # The answer ended when the deadline cut it off: not an answer to trust.
        result.status, result.excerpt, result.retry_after = None, "", None
    if deadline.expired:
        result.error = f"TimeoutError: no complete answer within the {timeout:g} s deadline"
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _post(request: OutboundRequest, *, target: Target, timeout: float) -> HttpResult:
    """The exchange itself; ``post`` times it and applies the deadline's verdict."""
    headers = {**request.headers, "Host": target.host_header}
    error: Exception | None = None
    for address in target.addresses:
        try:
            response = _pool(target, address).urlopen(
                "POST",
                target.request_uri,
                body=request.body,
                headers=headers,
                # total bounds the whole exchange: a read timeout alone restarts on every byte.
                timeout=urllib3.Timeout(total=timeout, connect=min(timeout, 10.0), read=timeout),
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as refused:
            error = refused
            continue
        except urllib3.exceptions.HTTPError as failed:
            error = failed
            break
        try:
            # Read a bounded amount: the excerpt is all we keep, and the rest is drained
            # only up to a limit so a huge answer cannot stall the worker.
            content = response.read(_READ_LIMIT)
            response.drain_conn()
        except urllib3.exceptions.HTTPError as failed:
            error = failed
            break
        finally:
            response.release_conn()
        return HttpResult(
            status=response.status,
            excerpt=content[:EXCERPT_BYTES].decode("utf-8", "replace"),
            retry_after=response.headers.get("retry-after"),
            error="",
            duration_ms=0.0,
        )
    return HttpResult(
        status=None,
        excerpt="",
        retry_after=None,
        error=f"{type(error).__name__}: {error}"[:1000],
        duration_ms=0.0,
    )
