"""Response schemas of the HTTP API, for its OpenAPI document (request bodies are read by hand
in ``endpoints`` and ``mapping``, so one bad event does not fail its batch)."""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    error: str


class RejectedOut(Schema):
    index: int
    messageId: str | None
    error: str


class StrictMetaOut(Schema):
    errors: list[str]


class IngestOut(Schema):
    success: bool
    received: int
    stored: int
    duplicates: int
    ignored: dict[str, int]
    rejected: list[RejectedOut]
    meta: StrictMetaOut | None = None


class WebhookOut(Schema):
    success: bool
    messageId: str
    event: str
    duplicate: bool


class HealthOut(Schema):
    status: str
    database: str
    broker: str


class CatalogEventOut(Schema):
    name: str
    channel: str
    metric: str
    semantic: bool


class CatalogWebhookPairOut(Schema):
    object_type: str
    metric: str
    event: str


class CatalogOut(Schema):
    events: list[CatalogEventOut]
    webhook_pairs: list[CatalogWebhookPairOut]
