"""Replay a destination's events: everything dead, a time range, or given messageIds."""

from __future__ import annotations

import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from metrics_source.forwarding.models import Destination, ReplayJob, ReplayScope, ReplayState
from metrics_source.forwarding.replay import events_replay
from metrics_source.forwarding.replay_jobs import replay_job_create, replay_job_run


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
        "range (--since/--until, events the destination never had included), --all (every "
        "event matching the filters), or --message-id. Dead and range replays are recorded as "
        "replay jobs (admin: Replay jobs); if this command is interrupted, a worker finishes them."
    )

    def add_arguments(self, parser):
        parser.add_argument("destination", help="Destination name or id.")
        parser.add_argument("--dead", action="store_true", help="Everything dead.")
        parser.add_argument("--since", type=_moment, help="Events at or after (ISO 8601).")
        parser.add_argument("--until", type=_moment, help="Events before (ISO 8601).")
        parser.add_argument(
            "--all",
            action="store_true",
            dest="everything",
            help="Every event matching the destination's filters.",
        )
        parser.add_argument("--message-id", action="append", dest="message_ids")
        parser.add_argument(
            "--background",
            action="store_true",
            help="Leave the dead / range replay to the Celery workers and return at once.",
        )

    def handle(self, *args, destination: str, dead: bool, since, until, everything: bool,
               message_ids, background: bool, **options):  # fmt: skip
        found = Destination.objects.filter(name=destination).first()
        if found is None and destination.isdigit():
            found = Destination.objects.filter(pk=int(destination)).first()
        if found is None:
            raise CommandError(f"no destination named {destination!r}")
        if not (dead or since or until or everything or message_ids):
            raise CommandError("say what to replay: --dead, --since/--until, --all or --message-id")
        jobs = []
        if dead:
            jobs.append(replay_job_create(destination_id=found.pk, scope=ReplayScope.DEAD,
                                          requested_by="forward_replay"))  # fmt: skip
        if since or until or everything:
            jobs.append(
                replay_job_create(
                    destination_id=found.pk,
                    scope=ReplayScope.EVENTS,
                    since=since,
                    until=until,
                    requested_by="forward_replay",
                )
            )
        total = 0
        for job in jobs:
            if background:
                self.stdout.write(f"replay job {job.pk} queued: {job}")
                continue
            while True:
                replay_job_run(job.pk, progress=self._progress)
                job.refresh_from_db()
                if job.state == ReplayState.DONE:
                    break
                # A worker's sweep took it first (or holds it still): follow its progress.
                time.sleep(1)
                self._progress(job)
            total += job.replayed
        if message_ids:
            # Found through the messageId index: small, done here and now.
            total += events_replay(destination_id=found.pk, message_ids=message_ids)
        if not background or message_ids:
            self.stdout.write(f"{total} deliveries to {found.name} are pending again.")

    def _progress(self, job: ReplayJob) -> None:
        percent = "" if job.percent is None else f" ({job.percent:.0f}%)"
        self.stdout.write(
            f"  replay job {job.pk}: {job.done} of {job.total} {job.get_scope_display().lower()}"
            f"{percent}, {job.replayed} pending again"
        )
