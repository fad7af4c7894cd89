"""Give a source a new write key and print it, once; the old key stops working."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from metrics_source.ingest.sources import source_find, source_rotate_write_key
from metrics_source.management.commands._provisioning import write_json


class Command(BaseCommand):
    help = (
        "Replace a source's write key and print the new one once. The old key stops working "
        "within SOURCE_CACHE_SECONDS in the running web processes."
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
        write_key = source_rotate_write_key(source=found)
        if as_json:
            write_json(
                self,
                {
                    "id": found.pk,
                    "name": found.name,
                    "slug": found.slug,
                    "write_key": write_key,
                    "write_key_hint": found.write_key_hint,
                },
            )
            return
        self.stdout.write(f"New write key for {found.name!r} ({found.slug}): {write_key}")
        self.stdout.write("  Shown once: copy it now, only its hash is stored.")
