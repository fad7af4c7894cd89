"""Print each destination's forwarding health (or JSON with --json), for scripts and cron."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from metrics_source.forwarding.health import destinations_health
from metrics_source.forwarding.models import Destination


class Command(BaseCommand):
    help = "Forwarding health per destination: backlog, last 24 h, p95 latency, last error."

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, as_json: bool = False, **options) -> None:
        destinations = list(Destination.objects.order_by("name"))
        health = destinations_health([d.pk for d in destinations])
        rows = []
        for destination in destinations:
            item = health[destination.pk]
            rows.append(
                {
                    "name": destination.name,
                    "kind": destination.kind,
                    "enabled": destination.enabled,
                    "paused": destination.paused,
                    "pause_reason": destination.pause_reason,
                    "backlog": item.backlog,
                    "oldest_pending": item.oldest_pending.isoformat()
                    if item.oldest_pending
                    else None,
                    "delivered_24h": item.delivered_24h,
                    "failed_24h": item.failed_24h,
                    "success_rate_24h": item.success_rate,
                    "p95_ms": item.p95_ms,
                    "last_error": item.last_error,
                }
            )
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            state = "paused" if row["paused"] else ("enabled" if row["enabled"] else "disabled")
            rate = row["success_rate_24h"]
            p95 = row["p95_ms"]
            self.stdout.write(
                f"{row['name']} ({row['kind']}, {state}): backlog {row['backlog']}"
                f" (oldest {row['oldest_pending'] or '-'}); last 24 h: "
                f"{row['delivered_24h']} delivered, {row['failed_24h']} failed, "
                f"success {'-' if rate is None else f'{rate:.1%}'}, "
                f"p95 {'-' if p95 is None else f'{p95:.0f} ms'}"
            )
            if row["pause_reason"]:
                self.stdout.write(f"  {row['pause_reason']}")
            if row["last_error"]:
                self.stdout.write(f"  last error: {row['last_error']}")
