"""Create a source and print its write key, once (only its digest is stored)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from metrics_source.ingest.sources import source_create
from metrics_source.management.commands._provisioning import (
    add_secret_arguments,
    one_line,
    read_secret,
    write_json,
)


class Command(BaseCommand):
    help = (
        "Create a source and print its write key once: copy it then, only its hash is stored "
        "(source_rotate_key makes a new one). With a Customer.io reporting-webhook signing "
        "secret, the source also accepts that workspace's webhooks."
    )
    # call_command(..., stdin=...) stands in for standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("name", help="The source's name (unique).")
        parser.add_argument(
            "--slug", default="", help="Names it in its webhook URL; default: made from the name."
        )
        parser.add_argument(
            "--disabled", action="store_true", help="Create it disabled (its requests get 403)."
        )
        add_secret_arguments(
            parser, "webhook-secret", "the Customer.io reporting-webhook signing secret"
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, name: str, slug: str, disabled: bool, as_json: bool, **options):
        secret = read_secret(options, "webhook-secret")
        try:
            source, write_key = source_create(
                name=name, slug=slug, webhook_signing_secret=secret, enabled=not disabled
            )
        except ValidationError as error:
            raise CommandError(f"source not created: {one_line(error)}") from None
        webhook_path = reverse("api:customerio_webhook", kwargs={"slug": source.slug})
        if as_json:
            write_json(
                self,
                {
                    "id": source.pk,
                    "name": source.name,
                    "slug": source.slug,
                    "enabled": source.enabled,
                    "write_key": write_key,
                    "write_key_hint": source.write_key_hint,
                    "webhook_path": webhook_path,
                    "has_webhook_secret": bool(source.webhook_signing_secret),
                },
            )
            return
        self.stdout.write(f"Created source {source.name!r} (id {source.pk}, slug {source.slug}).")
        self.stdout.write(f"Write key: {write_key}")
        self.stdout.write("  Shown once: copy it now, only its hash is stored.")
        webhooks = (
            "signing secret set"
            if source.webhook_signing_secret
            else "refused until a signing secret is set (admin)"
        )
        self.stdout.write(f"Reporting webhook: {webhook_path} ({webhooks})")
