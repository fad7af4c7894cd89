"""Replay a destination's events: everything dead, a time range, or given messageIds."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from metrics_source.forwarding.models import Destination
from metrics_source.forwarding.replay import deliveries_replay, events_replay


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO 8601 date or time: {value!r}") from None
    if moment.tzinfo is None:
        raise CommandError(f"give a time zone (e.g. Z or +00:00): {value!r}")
    return moment


class Command(BaseCommand):
    help = (
        "Send a destination's events again (same messageId / webhook-id): --dead, or a time "
        "range (--since/--until, events the destination never had included), or --message-id."
    )

    def add_arguments(self, parser):
        parser.add_argument("destination", help="Destination name or id.")
        parser.add_argument("--dead", action="store_true", help="Everything dead.")
        parser.add_argument("--since", type=_moment, help="Events at or after (ISO 8601).")
        parser.add_argument("--until", type=_moment, help="Events before (ISO 8601).")
        parser.add_argument("--message-id", action="append", dest="message_ids")

    def handle(self, *args, destination: str, dead: bool, since, until, message_ids, **options):
        found = Destination.objects.filter(name=destination).first()
        if found is None and destination.isdigit():
            found = Destination.objects.filter(pk=int(destination)).first()
        if found is None:
            raise CommandError(f"no destination named {destination!r}")
        if not (dead or since or until or message_ids):
            raise CommandError("say what to replay: --dead, --since/--until or --message-id")
        total = 0
        if dead:
            total += deliveries_replay(destination_id=found.pk, statuses=["dead"])
        if since or until or message_ids:

            def progress(done: int, of: int) -> None:
                self.stdout.write(f"  {done / of:.0%} of the id range scanned")

            total += events_replay(
                destination_id=found.pk,
                since=since,
                until=until,
                message_ids=message_ids,
                progress=progress,
            )
        self.stdout.write(f"{total} deliveries to {found.name} are pending again.")
