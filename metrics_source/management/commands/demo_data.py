"""Fill the dashboard with realistic demo activity, stored through the ingest service.

The calls come from ``metrics_source.demo`` and are stored by its writer through
``events_ingest_calls`` exactly as the tracking API's are, attributed to a source named "Demo
data"; this command parses the options, shows progress and reports. Running it again with the
same seed stores nothing new.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from metrics_source.demo import DEFAULT_DAYS, DEFAULT_EVENTS, DEFAULT_SEED, DemoStream
from metrics_source.demo.writer import DemoTotals, demo_calls_store, demo_source
from metrics_source.ingest.service import MAX_BATCH_EVENTS
from metrics_source.models import Event
from metrics_source.summaries.rollup import summaries_catch_up

DEFAULT_CHUNK_SIZE = 1000
MAX_EVENTS = 50_000_000


def _bounded(low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
        return number

    return parse


class Command(BaseCommand):
    help = (
        "Generate realistic message activity for the last N days (campaigns, broadcasts, "
        "newsletters and transactional messages on every channel) and store it through the "
        "ingest service. Deterministic for a seed: a second run stores nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--events",
            type=_bounded(0, MAX_EVENTS),
            default=DEFAULT_EVENTS,
            help=f"distinct events to generate (default {DEFAULT_EVENTS:,}); about 1%% more "
            "calls are sent, the repeats a real sender makes",
        )
        parser.add_argument(
            "--days",
            type=_bounded(1, 3650),
            default=DEFAULT_DAYS,
            help=f"length of the window ending now (default {DEFAULT_DAYS})",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"random seed; the same seed gives the same events (default {DEFAULT_SEED})",
        )
        parser.add_argument(
            "--chunk-size",
            type=_bounded(1, MAX_BATCH_EVENTS),
            default=DEFAULT_CHUNK_SIZE,
            help=f"calls per transaction (default {DEFAULT_CHUNK_SIZE})",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when events are already stored (for a first run)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        parser.add_argument(
            "--no-summarise",
            action="store_true",
            help="leave the dashboard's summaries to the worker instead of updating them here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Event.objects.exists():
            self.stdout.write("Events are already stored; no demo data generated (--if-empty).")
            return
        if options["events"] == 0:
            self.stdout.write("Nothing to do: --events 0.")
            return
        source = demo_source()
        stream = DemoStream(events=options["events"], days=options["days"], seed=options["seed"])
        err_stream = options.get("stderr") or sys.stderr
        bar = tqdm(
            total=options["events"],
            unit=" events",
            file=err_stream,
            disable=options["no_progress"],
            dynamic_ncols=True,
        )
        totals = DemoTotals()
        began = time.perf_counter()
        try:
            for totals in demo_calls_store(
                source=source, calls=stream, chunk_size=options["chunk_size"]
            ):
                bar.update(stream.stats.events - bar.n)
                bar.set_postfix(
                    stored=f"{totals.stored:,}", duplicates=f"{totals.duplicates:,}", refresh=False
                )
        except KeyboardInterrupt:
            raise CommandError(
                f"interrupted after {totals.stored:,} stored events; run the same command again to "
                "finish (what is stored already counts as duplicates)",
                returncode=130,
            ) from None
        finally:
            bar.close()
        took = time.perf_counter() - began
        stats = stream.stats
        self.stdout.write(
            f"Demo data ({stream.days} days, seed {stream.seed}, source {source.name!r}): "
            f"{totals.stored:,} stored, {totals.duplicates:,} duplicates, "
            f"{totals.rejected:,} rejected; "
            f"{stats.deliveries:,} deliveries, {stats.subscription_changes:,} subscription "
            f"changes; {took:.1f} s, {stats.calls / max(took, 1e-9):,.0f} events/s"
        )
        for reason, count in sorted(totals.reasons.items(), key=lambda item: -item[1])[:5]:
            self.stderr.write(f"rejected {count:,}: {reason}")
        if totals.rejected:
            raise CommandError(f"{totals.rejected:,} generated events were rejected (a bug)")
        if not options["no_summarise"]:
            # The worker's rollup would take them within seconds; doing it here means the
            # dashboard is complete the moment the command returns.
            began = time.perf_counter()
            summarised = summaries_catch_up()
            self.stdout.write(
                f"Summaries: {summarised.events:,} events summarised in "
                f"{time.perf_counter() - began:.1f} s"
                + ("" if summarised.ran else " (a running worker is summarising the rest)")
            )
