"""HTTP endpoints: authenticate -> read the body -> one service call -> response.

The tracking API copies the paths, auth, limits and answers of Segment-compatible services so an
unmodified SDK pointed at this host just works. Bodies are parsed here by hand (orjson, then
per-event pydantic validation in ``mapping``) rather than by a ninja body schema, because one
bad event must not fail its whole batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Router, Status
from ninja.operation import Operation
from ninja.renderers import BaseRenderer
from ninja.security.base import AuthBase
from pydantic import TypeAdapter, ValidationError

from metrics_source.ingest import catalog
from metrics_source.ingest.auth import (
    AuthError,
    source_for_webhook_slug,
    source_for_write_key,
    verify_customerio_signature,
    write_key_from_authorization,
)
from metrics_source.ingest.mapping import MAX_MESSAGE_ID_LENGTH
from metrics_source.ingest.request_body import (
    BodyError,
    EmptyBodyError,
    parse_json,
    read_body,
    read_json_body,
    read_raw_body,
)
from metrics_source.ingest.schemas import (
    CatalogOut,
    ErrorOut,
    HealthOut,
    IngestOut,
    WebhookOut,
)
from metrics_source.ingest.service import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_WEBHOOK_BYTES,
    NON_METRIC_CALL_TYPES,
    IngestResult,
    events_ingest_calls,
    events_ingest_webhooks,
)
from metrics_source.models import Source
from metrics_source.runtime.health import broker_status, database_status


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson.dumps(data)


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


class MetricsSourceAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # The endpoint function's name, as clients generated from the document call it: ninja's
        # default prefixes the module path, so moving a function would rename the operation.
        return operation.view_func.__name__


api = MetricsSourceAPI(
    title="metrics-source",
    version="1",
    description=(
        "Receives Customer.io message-activity events from reporting webhooks and "
        "Segment-compatible SDKs, stores each once, and forwards them."
    ),
    renderer=OrjsonRenderer(),
    docs_url="api/docs",
    openapi_url="api/openapi.json",
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return api.create_response(request, {"error": message}, status=status)


@api.exception_handler(AuthError)
def _auth_error(request: HttpRequest, exc: AuthError) -> HttpResponse:
    return _error(request, exc.status, exc.message)


@api.exception_handler(BodyError)
def _body_error(request: HttpRequest, exc: BodyError) -> HttpResponse:
    return _error(request, exc.status, exc.message)


def _database_unavailable(request: HttpRequest, exc: object) -> HttpResponse:
    # Never 2xx without a commit: the sender must retry.
    response = _error(request, 503, "the database is unavailable; nothing was stored, retry later")
    response["Retry-After"] = "5"
    return response


api.add_exception_handler(OperationalError, _database_unavailable)
api.add_exception_handler(InterfaceError, _database_unavailable)


# ------------------------------------------------------------------------------------------
# Segment-compatible tracking API
# ------------------------------------------------------------------------------------------

write_key_auth = WriteKeyAuth()
tracking = Router(tags=["tracking API"], auth=write_key_auth)

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


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    # Hot-path answers skip ninja's response validation: the bodies are built here from
    # plain data, and the declared schemas still document them.
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


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
        return _json(400, body)
    return _json(200, body)


@tracking.post(
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


@tracking.post(
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
    body.pop("writeKey", None)
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
    tracking.post(
        f"/{_call_type}",
        response=_INGEST_RESPONSES,
        exclude_none=True,
        summary=f"Accept {_call_type} calls (counted, not stored as metrics)",
        openapi_extra=_json_body_doc({"type": "object"}),
    )(_non_metric_call(_call_type))


# ------------------------------------------------------------------------------------------
# Customer.io reporting webhooks
# ------------------------------------------------------------------------------------------

webhooks = Router(tags=["reporting webhooks"])


@webhooks.post(
    "/customerio/{slug}",
    response={
        200: WebhookOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        503: ErrorOut,
    },
    summary="Receive one Customer.io reporting webhook (signed with X-CIO-Signature)",
)
def customerio_webhook(request: HttpRequest, slug: str):
    source = source_for_webhook_slug(slug)
    # The signature first (as Customer.io asks): only the size of what was sent is checked
    # before it, so nothing about an unsigned request is decompressed, parsed or reported.
    sent_at = verify_customerio_signature(
        secret=source.webhook_signing_secret,
        timestamp_header=request.headers.get("X-CIO-Timestamp"),
        signature_header=request.headers.get("X-CIO-Signature"),
        body=read_raw_body(request, limit=MAX_WEBHOOK_BYTES),  # the bytes as sent are signed
        tolerance_seconds=settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS,
    )
    payload = parse_json(read_body(request, limit=MAX_WEBHOOK_BYTES))
    result = events_ingest_webhooks(
        source=source, payloads=[payload], sent_at=datetime.fromtimestamp(sent_at, tz=UTC)
    )
    if result.rejected:
        raise BodyError(400, result.rejected[0].error)
    return _json(
        200,
        {
            "success": True,
            "messageId": payload["event_id"].strip(),
            "event": result.event_names[0],
            "duplicate": result.duplicates > 0,
        },
    )


# ------------------------------------------------------------------------------------------
# Health and catalogue
# ------------------------------------------------------------------------------------------

system = Router(tags=["system"])


@system.get("/healthz", response={200: HealthOut, 503: HealthOut}, summary="Database and broker")
def healthz(request: HttpRequest):
    database, broker = database_status(), broker_status()
    healthy = database == "ok" and broker == "ok"
    status = "ok" if healthy else "unavailable"
    return Status(
        200 if healthy else 503, {"status": status, "database": database, "broker": broker}
    )


@system.get("/api/catalog", response=CatalogOut, summary="Every event name, channel and metric")
def event_catalog(request: HttpRequest):
    return {
        "events": [
            {"name": e.name, "channel": e.channel.value, "metric": e.metric.value,
             "semantic": e.semantic}
            for e in catalog.EVENT_TYPES
        ],
        "webhook_pairs": [
            {"object_type": object_type, "metric": metric, "event": event_type.name}
            for object_type, metric, event_type in catalog.webhook_pairs()
        ],
    }  # fmt: skip


api.add_router("/v1", tracking)
api.add_router("/webhooks", webhooks)
api.add_router("", system)
