"""Destination kinds: one module each; a new kind is one file plus a line here."""

from __future__ import annotations

from metrics_source.forwarding.kinds.base import Kind, OutboundRequest
from metrics_source.forwarding.kinds.segment import SegmentKind
from metrics_source.forwarding.kinds.webhook import WebhookKind
from metrics_source.forwarding.models import DestinationKind

KINDS: dict[str, Kind] = {
    DestinationKind.WEBHOOK: WebhookKind(),
    DestinationKind.SEGMENT: SegmentKind(),
}

__all__ = ["KINDS", "Kind", "OutboundRequest"]
