"""List the sources, without their secrets: the write key's last characters only."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand
from django.urls import reverse

from metrics_source.ingest.auth import previous_key_until, previous_secret_until
from metrics_source.management.commands._provisioning import write_json
from metrics_source.models import Source


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class Command(BaseCommand):
    help = (
        "List the sources: name, slug, state, the write key's hint (its last characters, never "
        "the key) and whether a webhook signing secret is set (never the secret)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, as_json: bool, **options) -> None:
        rows = [
            {
                "id": source.pk,
                "name": source.name,
                "slug": source.slug,
                "enabled": source.enabled,
                "write_key_hint": f"msk_…{source.write_key_hint}",
                "has_webhook_secret": bool(source.webhook_signing_secret),
                "previous_write_key_valid_until": _iso(previous_key_until(source)),
                "previous_webhook_secret_valid_until": _iso(previous_secret_until(source)),
                "webhook_path": reverse("api:customerio_webhook", kwargs={"slug": source.slug}),
                "created_at": source.created_at.isoformat(),
            }
            for source in Source.objects.order_by("name")
        ]
        if as_json:
            write_json(self, rows)
            return
        for row in rows:
            state = "enabled" if row["enabled"] else "disabled"
            secret = "webhook secret set" if row["has_webhook_secret"] else "no webhook secret"
            grace = "".join(
                f"\t{what} valid until {row[field]}"
                for what, field in (
                    ("previous key", "previous_write_key_valid_until"),
                    ("previous secret", "previous_webhook_secret_valid_until"),
                )
                if row[field]
            )
            self.stdout.write(
                f"{row['id']}\t{row['slug']}\t{row['name']}\t{state}\t"
                f"key {row['write_key_hint']}\t{secret}{grace}"
            )
        if not rows:
            self.stdout.write("No sources yet (source_create makes one).")
