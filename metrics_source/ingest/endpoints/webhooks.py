"""Customer.io reporting webhooks: ``/webhooks/customerio/<slug>``, one signed event per
request."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest
from ninja import Router

from metrics_source.ingest.auth import (
    STAND_IN_SECRET,
    AuthError,
    source_for_webhook_slug,
    verify_customerio_signature,
    webhook_secrets,
)
from metrics_source.ingest.endpoints.responses import json_response
from metrics_source.ingest.request_body import BodyError, parse_json, read_body, read_raw_body
from metrics_source.ingest.schemas import ErrorOut, WebhookOut
from metrics_source.ingest.service import MAX_WEBHOOK_BYTES, events_ingest_webhooks

router = Router(tags=["reporting webhooks"])
log = logging.getLogger("metrics_source.ingest")


@router.post(
    "/customerio/{slug}",
    response={
        200: WebhookOut,
        400: ErrorOut,
        401: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        503: ErrorOut,
    },
    summary="Receive one Customer.io reporting webhook (signed with X-CIO-Signature)",
)
def customerio_webhook(request: HttpRequest, slug: str):
    source, unusable = source_for_webhook_slug(slug)
    # The signature first (as Customer.io asks): only the size of what was sent is checked
    # before it, so nothing about an unsigned request is decompressed, parsed or reported.
    # A slug with no usable source is checked against a stand-in secret, so its answer (and
    # its cost) is a wrong signature's: slugs cannot be told apart from outside.
    try:
        sent_at = verify_customerio_signature(
            signing_secrets=webhook_secrets(source) if source else [STAND_IN_SECRET],
            timestamp_header=request.headers.get("X-CIO-Timestamp"),
            signature_header=request.headers.get("X-CIO-Signature"),
            body=read_raw_body(request, limit=MAX_WEBHOOK_BYTES),  # the bytes as sent are signed
            tolerance_seconds=settings.WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS,
        )
    except AuthError:
        if unusable:
            log.warning("webhook refused for the slug %r: %s", slug[:64], unusable)
        raise
    if source is None:  # the stand-in secret cannot match; refuse all the same
        raise AuthError(401, "X-CIO-Signature does not match the request body")
    payload = parse_json(read_body(request, limit=MAX_WEBHOOK_BYTES))
    result = events_ingest_webhooks(
        source=source, payloads=[payload], sent_at=datetime.fromtimestamp(sent_at, tz=UTC)
    )
    if result.rejected:
        raise BodyError(400, result.rejected[0].error)
    return json_response(
        200,
        {
            "success": True,
            "messageId": payload["event_id"].strip(),
            "event": result.event_names[0],
            "duplicate": result.duplicates > 0,
        },
    )
