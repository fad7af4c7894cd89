"""The interface every destination kind implements: turn encoded events into one request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from metrics_source.forwarding.models import Destination


@dataclass(slots=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    # The receiver's idempotency key (Standard Webhooks `webhook-id`), recorded on the attempt.
    request_id: str = ""


class Kind(Protocol):
    # Limits the delivery service enforces before calling request(): events per request,
    # bytes per event, bytes per request (None: no limit).
    max_events: int
    max_event_bytes: int | None
    max_request_bytes: int | None

    def url_to_check(self, destination: Destination) -> str:
        """The URL requests go to (SSRF checks and the admin use it)."""
        ...

    def request(
        self, destination: Destination, encoded: list[bytes], message_ids: list[str]
    ) -> OutboundRequest:
        """One request carrying the encoded events (JSON, timestamp order)."""
        ...
