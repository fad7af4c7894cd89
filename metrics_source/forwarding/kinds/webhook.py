"""Webhook: the semantic track event as JSON (a JSON array in batch mode), signed per
Standard Webhooks."""

from __future__ import annotations

import hashlib
import time

from metrics_source.forwarding.kinds.base import OutboundRequest
from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.signing import signature_header


def batch_id(message_ids: list[str]) -> str:
    """The same batch gets the same webhook-id on every retry."""
    digest = hashlib.sha256("\n".join(sorted(message_ids)).encode()).hexdigest()
    return f"batch_{digest[:40]}"


class WebhookKind:
    max_events = 1000
    max_event_bytes: int | None = None
    max_request_bytes: int | None = 5 * 1024 * 1024

    def url_to_check(self, destination: Destination) -> str:
        return destination.url

    def request(
        self, destination: Destination, encoded: list[bytes], message_ids: list[str]
    ) -> OutboundRequest:
        if destination.batch_size > 1:
            body = b"[" + b",".join(encoded) + b"]"
            webhook_id = batch_id(message_ids)
        else:
            body, webhook_id = encoded[0], message_ids[0]
        timestamp = int(time.time())
        headers = {str(k): str(v) for k, v in (destination.extra_headers or {}).items()}
        headers.update(
            {
                "content-type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
            }
        )
        signed_with = [destination.secret, destination.previous_secret]
        if any(signed_with):
            headers["webhook-signature"] = signature_header(
                signed_with, webhook_id, timestamp, body
            )
        return OutboundRequest(destination.url, body, headers, webhook_id)
