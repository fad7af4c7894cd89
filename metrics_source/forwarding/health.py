"""Reads for the operator: per-destination health over the last 24 hours, a few grouped
queries for all destinations at once (the attempt log and the backlog index, never a scan of
the whole ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from metrics_source.forwarding.models import DeliveryAttempt
from metrics_source.forwarding.sql import DELIVERY

ATTEMPT = DeliveryAttempt._meta.db_table


@dataclass(slots=True)
class Health:
    delivered_24h: int = 0
    failed_24h: int = 0
    requests_24h: int = 0
    successful_requests_24h: int = 0
    p95_ms: float | None = None
    backlog: int = 0
    oldest_pending: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None

    @property
    def success_rate(self) -> float | None:
        if not self.requests_24h:
            return None
        return self.successful_requests_24h / self.requests_24h


def destinations_health(destination_ids: list[int]) -> dict[int, Health]:
    health = {pk: Health() for pk in destination_ids}
    if not destination_ids:
        return health
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT destination_id, "  # noqa: S608
            "coalesce(sum(cardinality(delivery_ids)) FILTER (WHERE outcome = 'delivered'), 0), "
            "coalesce(sum(cardinality(delivery_ids)) FILTER (WHERE outcome <> 'delivered'), 0), "
            "count(*), count(*) FILTER (WHERE outcome = 'delivered'), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) "
            f"FROM {ATTEMPT} WHERE destination_id = ANY(%s::bigint[]) "
            "AND started_at > now() - interval '24 hours' GROUP BY destination_id",
            [destination_ids],
        )
        for pk, delivered, failed, requests, ok, p95 in cursor.fetchall():
            item = health[pk]
            item.delivered_24h, item.failed_24h = int(delivered), int(failed)
            item.requests_24h, item.successful_requests_24h, item.p95_ms = requests, ok, p95
        cursor.execute(
            "SELECT destination_id, count(*), min(created_at) "  # noqa: S608
            f"FROM {DELIVERY} WHERE destination_id = ANY(%s::bigint[]) "
            "AND status IN ('pending', 'failed', 'in_flight') GROUP BY destination_id",
            [destination_ids],
        )
        for pk, backlog, oldest in cursor.fetchall():
            health[pk].backlog, health[pk].oldest_pending = backlog, oldest
        cursor.execute(
            "SELECT DISTINCT ON (destination_id) destination_id, error, started_at "  # noqa: S608
            f"FROM {ATTEMPT} WHERE destination_id = ANY(%s::bigint[]) "
            "AND outcome <> 'delivered' ORDER BY destination_id, started_at DESC",
            [destination_ids],
        )
        for pk, error, at in cursor.fetchall():
            health[pk].last_error, health[pk].last_error_at = error, at
    return health
