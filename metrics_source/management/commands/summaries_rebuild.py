"""Rebuild the dashboard's summaries from the stored events.

For an operator after restoring events from a backup, or after events were changed by hand:
empties the summaries, queues every stored event again and summarises them (or, with
``--queue-only``, leaves that to the worker's rollup).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from metrics_source.summaries.rollup import summaries_catch_up, summaries_requeue_all


class Command(BaseCommand):
    help = "Empty the dashboard's summaries and rebuild them from every stored event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue-only",
            action="store_true",
            help="queue the events and return; the worker's rollup summarises them",
        )

    def handle(self, *args: Any, queue_only: bool = False, **options: Any) -> None:
        with transaction.atomic():
            queued = summaries_requeue_all()
        self.stdout.write(f"Summaries emptied; {queued:,} events queued.")
        if queue_only:
            return
        began = time.perf_counter()
        result = summaries_catch_up()
        self.stdout.write(
            f"{result.events:,} events summarised in {time.perf_counter() - began:.1f} s"
            + ("" if result.ran else " (a running rollup is summarising them)")
        )
