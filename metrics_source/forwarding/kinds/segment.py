"""Segment-compatible tracking API (Segment, Customer.io Data Pipelines, RudderStack, Jitsu,
another metrics-source): POST <base>/v1/batch with the write key as Basic user name."""

from __future__ import annotations

import base64

from django.utils import timezone

from metrics_source.forwarding.kinds.base import OutboundRequest
from metrics_source.forwarding.models import Destination
from metrics_source.ingest.mapping import iso


def batch_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1/batch") else f"{base}/v1/batch"


class SegmentKind:
    # The API's published limits.
    max_events = 2500
    max_event_bytes: int | None = 32 * 1024
    # Room for the envelope around the events.
    max_request_bytes: int | None = 500 * 1024 - 256

    def url_to_check(self, destination: Destination) -> str:
        return batch_url(destination.url)

    def request(
        self, destination: Destination, encoded: list[bytes], message_ids: list[str]
    ) -> OutboundRequest:
        sent_at = iso(timezone.now()).encode()
        body = b'{"batch":[' + b",".join(encoded) + b'],"sentAt":"' + sent_at + b'"}'
        credentials = base64.b64encode(f"{destination.secret}:".encode()).decode()
        headers = {str(k): str(v) for k, v in (destination.extra_headers or {}).items()}
        headers.update(
            {"content-type": "application/json", "authorization": f"Basic {credentials}"}
        )
        return OutboundRequest(batch_url(destination.url), body, headers)
