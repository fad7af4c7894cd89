"""Read a JSON request body: content type, gzip, size limits, parsing.

Every failure is a ``BodyError`` carrying the HTTP status the sender should see.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from metrics_source.ingest import exact_json


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EmptyBodyError(BodyError):
    """Nothing was sent: for a request without an Authorization header, that also means no
    credentials (the write key may be in the body), which the tracking API answers with 401."""

    def __init__(self) -> None:
        super().__init__(400, "the body is empty; send a JSON object")


def _kb(limit: int) -> str:
    return f"{limit // 1024} KB"


def _gunzip(data: bytes, limit: int) -> bytes:
    # Decompress at most limit+1 bytes so a small "gzip bomb" cannot exhaust memory.
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error:
        raise BodyError(400, "the body is not valid gzip") from None
    if len(out) > limit:
        raise BodyError(413, f"the decompressed body is larger than {_kb(limit)}")
    if not decompressor.eof:
        raise BodyError(400, "the gzip body is truncated")
    return out


_CHUNK = 64 * 1024


def _read_chunked(request: HttpRequest, *, limit: int) -> None:
    """A body sent with ``Transfer-Encoding: chunked`` has no Content-Length, which Django
    reads as "empty"; the server (gunicorn) has already decoded the chunks, so the input is
    read to its end here, at most ``limit`` bytes, and kept where ``request.body`` finds it."""
    if hasattr(request, "_body"):
        return
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not chunked or request.META.get("CONTENT_LENGTH"):
        return
    stream = request.META["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while part := stream.read(min(_CHUNK, limit + 1 - size)):
        parts.append(part)
        size += len(part)
        if size > limit:
            raise BodyError(413, f"the body is larger than {_kb(limit)}")
    request._body = b"".join(parts)


def _body(request: HttpRequest, *, limit: int) -> bytes:
    _read_chunked(request, limit=limit)
    try:
        return request.body
    except RequestDataTooBig:
        raise BodyError(413, f"the body is larger than {_kb(limit)}") from None


def read_raw_body(request: HttpRequest, *, limit: int) -> bytes:
    """The body's bytes as sent (compressed or not), at most ``limit``: what a signature
    covers, read before anything about the content is looked at."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"the body is larger than {_kb(limit)}")
    data = _body(request, limit=limit)
    if len(data) > limit:
        raise BodyError(413, f"the body is larger than {_kb(limit)}")
    return data


def read_body(request: HttpRequest, *, limit: int) -> bytes:
    """The request body, decompressed, after the content-type and size checks."""
    content_type = request.content_type or ""
    # An absent content type is tolerated (some HTTP clients omit it); a wrong one is not.
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise BodyError(415, f"Content-Type must be application/json, got {content_type!r}")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    if encoding != "gzip":
        return read_raw_body(request, limit=limit)
    # Compressed, the limit is on what it decompresses to (a chunked one is read up to the
    # largest body Django accepts at all).
    data = _body(request, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or limit)
    return _gunzip(data, limit)


def parse_json(data: bytes) -> Any:
    if not data.strip():
        raise EmptyBodyError
    try:
        return exact_json.loads(data)
    except orjson.JSONDecodeError as error:
        raise BodyError(400, f"malformed JSON: {error}") from None


def read_json_body(request: HttpRequest, *, limit: int) -> Any:
    """The parsed JSON body, at most ``limit`` bytes once decompressed.

    The result is kept on the request, so authentication (which may look for a ``writeKey``
    in the body) and the endpoint parse it once; a smaller limit is still enforced.
    """
    cached = getattr(request, "_metrics_source_json", None)
    if cached is None:
        data = read_body(request, limit=limit)
        cached = (len(data), parse_json(data))
        request._metrics_source_json = cached  # type: ignore[attr-defined]
    size, parsed = cached
    if size > limit:
        raise BodyError(413, f"the body is larger than {_kb(limit)}")
    return parsed
