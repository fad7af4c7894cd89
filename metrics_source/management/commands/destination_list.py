"""List the destinations with their filters and settings, never their secrets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand

from metrics_source.forwarding.models import Destination
from metrics_source.management.commands._provisioning import write_json


def shown_url(url: str) -> str:
    """The URL without what may be a credential: a password before the host, the query."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "…@" + netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, query="…" if parts.query else "").geturl()


class Command(BaseCommand):
    help = (
        "List the destinations: kind, URL, state, filters and sending settings. No secret: "
        "whether one is set, the names of extra headers (not their values), and the URL "
        "without a password or query string."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, as_json: bool, **options) -> None:
        destinations = Destination.objects.order_by("name").prefetch_related("sources")
        rows: list[dict[str, Any]] = [
            {
                "id": d.pk,
                "name": d.name,
                "kind": d.kind,
                "url": shown_url(d.url),
                "enabled": d.enabled,
                "paused": d.paused,
                "pause_reason": d.pause_reason,
                "has_secret": bool(d.secret),
                "has_previous_secret": bool(d.previous_secret),
                "extra_header_names": sorted(d.extra_headers or {}),
                "filters": {
                    "channels": d.channels,
                    "event_names": d.event_names,
                    "sources": [s.slug for s in d.sources.all()],
                    "campaign_ids": d.campaign_ids,
                    "broadcast_ids": d.broadcast_ids,
                    "newsletter_ids": d.newsletter_ids,
                    "transactional_message_ids": d.transactional_message_ids,
                },
                "batch_size": d.batch_size,
                "timeout_seconds": d.timeout_seconds,
                "max_requests_per_second": d.max_requests_per_second,
                "backfill_from": d.backfill_from.isoformat() if d.backfill_from else None,
                "created_at": d.created_at.isoformat(),
            }
            for d in destinations
        ]
        if as_json:
            write_json(self, rows)
            return
        for row in rows:
            state = "paused" if row["paused"] else ("enabled" if row["enabled"] else "disabled")
            filters = "; ".join(
                f"{name} {', '.join(map(str, values))}"
                for name, values in row["filters"].items()
                if values
            )
            self.stdout.write(
                f"{row['id']}\t{row['name']}\t{row['kind']}\t{state}\t{row['url']}\t"
                f"batch {row['batch_size']}\t{filters or 'all events'}"
            )
        if not rows:
            self.stdout.write("No destinations yet (destination_create makes one).")
