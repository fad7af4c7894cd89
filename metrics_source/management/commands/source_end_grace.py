"""End a source's grace period early: its previous write key and previous webhook signing
secret stop working now, once every sender uses the new ones."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from metrics_source.ingest.sources import (
    source_end_webhook_secret_grace,
    source_end_write_key_grace,
    source_find,
)
from metrics_source.management.commands._provisioning import write_json


class Command(BaseCommand):
    help = (
        "Stop accepting a source's previous write key and previous webhook signing secret now, "
        "before their grace period ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="The source's slug or id.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, source: str, as_json: bool, **options) -> None:
        found = source_find(source)
        if found is None:
            raise CommandError(f"no source with the slug or id {source!r} (see source_list)")
        key_ended = source_end_write_key_grace(source=found)
        secret_ended = source_end_webhook_secret_grace(source=found)
        if as_json:
            write_json(
                self,
                {
                    "id": found.pk,
                    "slug": found.slug,
                    "previous_write_key_ended": key_ended,
                    "previous_webhook_secret_ended": secret_ended,
                },
            )
            return
        if not (key_ended or secret_ended):
            self.stdout.write(f"{found.name!r} had no previous key or secret still accepted.")
            return
        ended = [
            *(["the previous write key"] if key_ended else []),
            *(["the previous webhook signing secret"] if secret_ended else []),
        ]
        self.stdout.write(f"{found.name!r}: {' and '.join(ended)} no longer accepted.")
