"""Give a source a new write key and print it, once; the old key keeps working for a grace
period (24 hours unless --grace-hours says otherwise)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from metrics_source.ingest.auth import previous_key_until
from metrics_source.ingest.sources import (
    DEFAULT_GRACE,
    MAX_GRACE,
    GraceInProgress,
    source_find,
    source_rotate_write_key,
)
from metrics_source.management.commands._provisioning import write_json


class Command(BaseCommand):
    help = (
        "Replace a source's write key and print the new one once. The old key stays valid for "
        "--grace-hours (default 24; 0 stops it within SOURCE_CACHE_SECONDS in the running web "
        "processes); source_end_grace ends that early."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="The source's slug or id.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

        parser.add_argument(
            "--grace-hours",
            type=float,
            default=DEFAULT_GRACE.total_seconds() / 3600,
            help="How long the old key stays valid, in hours (0 to 720; default 24).",
        )

    def handle(self, *args, source: str, as_json: bool, grace_hours: float, **options) -> None:
        found = source_find(source)
        if found is None:
            raise CommandError(f"no source with the slug or id {source!r} (see source_list)")
        if not 0 <= grace_hours <= MAX_GRACE.total_seconds() / 3600:
            raise CommandError(f"--grace-hours is between 0 and {MAX_GRACE.days * 24}")
        try:
            write_key = source_rotate_write_key(source=found, grace=timedelta(hours=grace_hours))
        except GraceInProgress as refused:
            raise CommandError(f"{refused} (source_end_grace {found.slug})") from None
        until = previous_key_until(found)
        if as_json:
            write_json(
                self,
                {
                    "id": found.pk,
                    "name": found.name,
                    "slug": found.slug,
                    "write_key": write_key,
                    "write_key_hint": found.write_key_hint,
                    "previous_write_key_valid_until": until.isoformat() if until else None,
                },
            )
            return
        self.stdout.write(f"New write key for {found.name!r} ({found.slug}): {write_key}")
        self.stdout.write("  Shown once: copy it now, only its hash is stored.")
        if until is None:
            self.stdout.write("  The old key no longer works.")
        else:
            self.stdout.write(
                f"  The old key (msk_…{found.previous_write_key_hint}) stays valid until "
                f"{until.isoformat()}; source_end_grace {found.slug} ends that now."
            )
