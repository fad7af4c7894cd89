"""Outbound HTTP: one connection pool per worker process, a timeout on every request, no
redirects followed, no retries inside the client (the ledger retries)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3

from metrics_source.forwarding.kinds import OutboundRequest

EXCERPT_BYTES = 1000
_READ_LIMIT = 64 * 1024

_pool: urllib3.PoolManager | None = None


def _manager() -> urllib3.PoolManager:
    # Created lazily, so each forked worker process gets its own sockets.
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(num_pools=50, maxsize=4, retries=False)
    return _pool


@dataclass(slots=True)
class HttpResult:
    status: int | None
    excerpt: str
    retry_after: str | None
    error: str
    duration_ms: float


def post(request: OutboundRequest, *, timeout: float) -> HttpResult:
    started = time.perf_counter()
    try:
        response = _manager().request(
            "POST",
            request.url,
            body=request.body,
            headers=request.headers,
            # total bounds the whole exchange: a read timeout alone restarts on every byte.
            timeout=urllib3.Timeout(total=timeout, connect=min(timeout, 10.0), read=timeout),
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            # Read a bounded amount: the excerpt is all we keep, and the rest is drained
            # only up to a limit so a huge answer cannot stall the worker.
            content = response.read(_READ_LIMIT)
            response.drain_conn()
        finally:
            response.release_conn()
        return HttpResult(
            status=response.status,
            excerpt=content[:EXCERPT_BYTES].decode("utf-8", "replace"),
            retry_after=response.headers.get("retry-after"),
            error="",
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    except urllib3.exceptions.HTTPError as error:
        return HttpResult(
            status=None,
            excerpt="",
            retry_after=None,
            error=f"{type(error).__name__}: {error}"[:1000],
            duration_ms=(time.perf_counter() - started) * 1000,
        )
