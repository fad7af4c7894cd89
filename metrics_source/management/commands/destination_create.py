"""Create a destination; a webhook's generated signing secret is printed once."""

from __future__ import annotations

import argparse
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from metrics_source.forwarding.destinations import DestinationInvalid, destination_create
from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.models import DestinationKind
from metrics_source.forwarding.ssrf import UrlRefused
from metrics_source.ingest.catalog import Channel
from metrics_source.ingest.sources import source_find
from metrics_source.management.commands._provisioning import (
    add_secret_arguments,
    read_secret,
    write_json,
)

# The admin form's filters, as repeatable options: option -> (model field, value type).
FILTERS = {
    "channel": ("channels", str),
    "event-name": ("event_names", str),
    "campaign-id": ("campaign_ids", int),
    "broadcast-id": ("broadcast_ids", int),
    "newsletter-id": ("newsletter_ids", int),
    "transactional-message-id": ("transactional_message_ids", int),
}


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (e.g. Z or +00:00): {value!r}")
    return moment


def _header(value: str) -> tuple[str, str]:
    name, colon, text = value.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', not {value!r}")
    return name.strip(), text.strip()


class Command(BaseCommand):
    help = (
        "Create a destination, as the admin's form does: the same kinds, checks and filters. "
        "A webhook given no signing secret gets one, printed once: give it to the receiver "
        "then. A Segment-compatible destination needs its write key (--secret-stdin or "
        "--secret-env). It receives the events stored from now on (and from --backfill-from)."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("name", help="The destination's name (unique).")
        parser.add_argument(
            "--kind", required=True, help=f"One of: {', '.join(KINDS)} (any other is refused)."
        )
        parser.add_argument(
            "--url",
            required=True,
            help="Webhook: the endpoint. Segment-compatible: the base URL (/v1/batch is added).",
        )
        add_secret_arguments(
            parser,
            "secret",
            "the webhook's whsec_ signing secret (default: a generated one) or the "
            "Segment-compatible write key",
        )
        filters = parser.add_argument_group(
            "which events (repeat an option for several values; none: all events; parent "
            "ids: any one matches)"
        )
        for option, (_field, kind) in FILTERS.items():
            filters.add_argument(
                f"--{option}",
                action="append",
                type=kind,
                default=[],
                metavar="ID" if kind is int else "NAME",
                help=f"One of: {', '.join(Channel)}." if option == "channel" else None,
            )
        filters.add_argument(
            "--source",
            action="append",
            default=[],
            dest="sources",
            metavar="SLUG_OR_ID",
            help="A source's slug or id: only its events.",
        )
        sending = parser.add_argument_group("sending")
        sending.add_argument(
            "--batch-size",
            type=int,
            metavar="N",
            default=1,
            help="Events per request (default 1; at most "
            + ", ".join(f"{name} {kind.max_events}" for name, kind in KINDS.items())
            + ").",
        )
        sending.add_argument(
            "--timeout-seconds",
            type=float,
            default=15.0,
            metavar="SECONDS",
            help="Per request (0.5 to 60; default 15).",
        )
        sending.add_argument(
            "--max-requests-per-second",
            type=float,
            default=None,
            metavar="RATE",
            help="Default: no limit.",
        )
        sending.add_argument(
            "--header",
            action="append",
            type=_header,
            default=[],
            metavar="'NAME: VALUE'",
            help="An extra request header, 'Name: value' (repeatable).",
        )
        parser.add_argument(
            "--backfill-from",
            type=_moment,
            metavar="WHEN",
            help="Also send the events stored before, from this time on (ISO 8601).",
        )
        parser.add_argument(
            "--disabled", action="store_true", help="Create it disabled (nothing is sent)."
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON document."
        )

    def handle(self, *args, **options) -> None:
        sources = []
        for wanted in options["sources"]:
            source = source_find(wanted)
            if source is None:
                raise CommandError(f"no source with the slug or id {wanted!r} (see source_list)")
            sources.append(source)
        given_secret = read_secret(options, "secret")
        fields = {
            field: options[option.replace("-", "_")] for option, (field, _) in FILTERS.items()
        }
        try:
            destination = destination_create(
                name=options["name"],
                kind=options["kind"],
                url=options["url"],
                secret=given_secret,
                enabled=not options["disabled"],
                batch_size=options["batch_size"],
                timeout_seconds=options["timeout_seconds"],
                max_requests_per_second=options["max_requests_per_second"],
                extra_headers=dict(options["header"]),
                backfill_from=options["backfill_from"],
                sources=tuple(sources),
                **fields,
            )
        except UrlRefused as error:
            raise CommandError(f"destination not created: url: {error}") from None
        except DestinationInvalid as error:
            raise CommandError(f"destination not created: {error}") from None
        generated = destination.secret if not given_secret else None
        if destination.kind != DestinationKind.WEBHOOK:
            generated = None
        if options["as_json"]:
            write_json(
                self,
                {
                    "id": destination.pk,
                    "name": destination.name,
                    "kind": destination.kind,
                    "url": destination.url,
                    "enabled": destination.enabled,
                    "signing_secret": generated,
                },
            )
            return
        self.stdout.write(
            f"Created destination {destination.name!r} (id {destination.pk}, "
            f"{destination.kind}) sending to {destination.url}."
        )
        if generated:
            self.stdout.write(f"Signing secret: {generated}")
            self.stdout.write(
                "  Shown once: give it to the receiver now (it verifies the "
                "webhook-signature header with it)."
            )
