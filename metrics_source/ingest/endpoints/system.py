"""``/healthz`` (database and broker, for load balancers and ``make run``) and
``/api/catalog`` (every event name, channel and metric)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from metrics_source.ingest import catalog
from metrics_source.ingest.schemas import CatalogOut, HealthOut
from metrics_source.runtime.health import broker_status, database_status

router = Router(tags=["system"])


@router.get("/healthz", response={200: HealthOut, 503: HealthOut}, summary="Database and broker")
def healthz(request: HttpRequest):
    database, broker = database_status(), broker_status()
    healthy = database == "ok" and broker == "ok"
    status = "ok" if healthy else "unavailable"
    return Status(
        200 if healthy else 503, {"status": status, "database": database, "broker": broker}
    )


@router.get("/api/catalog", response=CatalogOut, summary="Every event name, channel and metric")
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
