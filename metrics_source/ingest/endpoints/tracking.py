"""The Segment-compatible tracking API: ``/v1/batch``, ``/v1/track`` and the call types that are
counted, not stored.

It copies the paths, auth, limits and answers of Segment-compatible services so an unmodified
SDK pointed at this host just works. Bodies are parsed here by hand (orjson, then per-event
pydantic validation in ``mapping``) rather than by a ninja body schema, because one bad event
must not fail its whole batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.security.base import AuthBase
from pydantic import TypeAdapter, ValidationError

from metrics_source.ingest.auth import source_for_write_key, write_key_from_authorization
from metrics_source.ingest.endpoints.responses import json_response
from metrics_source.ingest.mapping import MAX_MESSAGE_ID_LENGTH
from metrics_source.ingest.request_body import BodyError, EmptyBodyError, read_json_body
from metrics_source.ingest.schemas import ErrorOut, IngestOut
from metrics_source.ingest.service import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    NON_METRIC_CALL_TYPES,
    IngestResult,
    events_ingest_calls,
)
from metrics_source.models import Source


class WriteKeyAuth(AuthBase):
    """HTTP Basic with the write key as user name (``writeKey:``), ``Bearer <writeKey>``, or a
    ``writeKey`` field in the JSON body, as Segment-compatible services accept."""

    openapi_type = "http"
    openapi_scheme = "basic"

    def __call__(self, request: HttpRequest) -> Source:
        header = request.headers.get("Authorization")
        if header:
            write_key = write_key_from_authorization(header)
        else:
            try:
                body = read_json_body(request, limit=MAX_BATCH_BYTES)
            except EmptyBodyError:
                body = None  # no header and no body: no credentials at all, so 401
            write_key = body.get("writeKey") if isinstance(body, dict) else None
            write_key = write_key if isinstance(write_key, str) else None
        return source_for_write_key(write_key)


write_key_auth = WriteKeyAuth()
router = Router(tags=["tracking API"], auth=write_key_auth)

_CALL_SCHEMA = {
    "type": "object",
    "required": ["event"],
    "properties": {
        "type": {"type": "string", "enum": ["track"]},
        "event": {"type": "string", "example": "Email Opened"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string", "maxLength": MAX_MESSAGE_ID_LENGTH},
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "context": {"type": "object"},
        "properties": {"type": "object"},
    },
}
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": MAX_BATCH_EVENTS, "items": _CALL_SCHEMA},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}


def _json_body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_INGEST_RESPONSES = {200: IngestOut, 400: IngestOut | ErrorOut, 401: ErrorOut, 403: ErrorOut,
                     413: ErrorOut, 415: ErrorOut, 503: ErrorOut}  # fmt: skip
_datetime = TypeAdapter(datetime)


def _optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise BodyError(400, f"{name} must be an object")
    return value


def _batch_sent_at(body: dict[str, Any]) -> datetime | None:
    value = body.get("sentAt")
    if value is None:
        return None
    try:
        parsed = _datetime.validate_python(value)
    except ValidationError:
        raise BodyError(400, "sentAt must be an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ingest_response(request: HttpRequest, result: IngestResult) -> HttpResponse:
    body: dict[str, Any] = {
        "success": not result.rejected,
        "received": result.received,
        "stored": result.stored,
        "duplicates": result.duplicates,
        "ignored": dict(result.ignored),
        "rejected": [
            {"index": r.index, "messageId": r.message_id, "error": r.error} for r in result.rejected
        ],
    }
    # As Segment and Customer.io Data Pipelines: an invalid call is named in a 200 answer (SDKs
    # do not retry it either way), and is a 400 only in strict mode.
    strict = request.headers.get("X-Strict-Mode", "").strip() == "1"
    if strict and result.rejected:
        body["meta"] = {
            "errors": [
                f"event {r.index}" + (f" ({r.message_id})" if r.message_id else "") + f": {r.error}"
                for r in result.rejected
            ]
        }
        return json_response(400, body)
    return json_response(200, body)


@router.post(
    "/batch",
    response=_INGEST_RESPONSES,
    exclude_none=True,
    openapi_extra=_json_body_doc(_BATCH_SCHEMA),
    summary=f"Send up to {MAX_BATCH_EVENTS:,} calls in one request (what SDKs use)",
)
def batch(request: HttpRequest):
    body = read_json_body(request, limit=MAX_BATCH_BYTES)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise BodyError(400, 'the body must be an object with a "batch" array')
    calls = body["batch"]
    if len(calls) > MAX_BATCH_EVENTS:
        raise BodyError(413, f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(calls)}")
    result = events_ingest_calls(
        source=request.auth,  # type: ignore[attr-defined]
        calls=calls,
        batch_context=_optional_object(body, "context"),
        batch_integrations=_optional_object(body, "integrations"),
        batch_sent_at=_batch_sent_at(body),
    )
    return _ingest_response(request, result)


@router.post(
    "/track",
    response=_INGEST_RESPONSES,
    exclude_none=True,
    openapi_extra=_json_body_doc(_CALL_SCHEMA),
    summary="Send one message-activity event",
)
def track(request: HttpRequest):
    body = read_json_body(request, limit=MAX_EVENT_BYTES)
    if not isinstance(body, dict):
        raise BodyError(400, "the body must be a JSON object")
    body.setdefault("type", "track")
    result = events_ingest_calls(source=request.auth, calls=[body])  # type: ignore[attr-defined]
    return _ingest_response(request, result)


def _non_metric_call(call_type: str):
    def endpoint(request: HttpRequest):
        body = read_json_body(request, limit=MAX_EVENT_BYTES)
        if not isinstance(body, dict):
            raise BodyError(400, "the body must be a JSON object")
        result = IngestResult(received=1)
        result.ignored[call_type] += 1
        return _ingest_response(request, result)

    endpoint.__name__ = call_type
    return endpoint


# Sorted: the set has no order of its own, and the documentation should not change between runs.
for _call_type in sorted(NON_METRIC_CALL_TYPES):
    router.post(
        f"/{_call_type}",
        response=_INGEST_RESPONSES,
        exclude_none=True,
        summary=f"Accept {_call_type} calls (counted, not stored as metrics)",
        openapi_extra=_json_body_doc({"type": "object"}),
    )(_non_metric_call(_call_type))
