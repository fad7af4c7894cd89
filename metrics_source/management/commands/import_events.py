"""Import message-activity events from NDJSON through the same mapping and dedupe as the API.

Each line is a Segment-compatible call or a Customer.io reporting-webhook payload; both kinds
may be mixed freely. Lines are read in chunks and each chunk is stored with one INSERT per kind,
so memory stays flat whatever the file size, and a re-run stores nothing twice.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.db.models import Q
from tqdm import tqdm

from metrics_source.ingest.bulk_import import (
    DERIVED_ID_PREFIX,
    MAX_LINE_BYTES,
    ChunkImporter,
    ImportTotals,
)
from metrics_source.ingest.ndjson import Input, open_input, read_lines
from metrics_source.models import Source

DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 10_000

EXIT_REJECTED = 1
EXIT_FAILED = 2
EXIT_INTERRUPTED = 130

HELP_EPILOG = f"""
Input: one JSON object per line, UTF-8, optionally gzip-compressed (detected from the content,
whatever the file name). A line is a reporting-webhook payload when it has "event_id" and
"metric"; otherwise it is a Segment-compatible call. identify, page, screen, group and alias
calls are counted as ignored. Blank lines are skipped.

Safe to run twice: events are deduplicated on messageId (a webhook's event_id) in the
database. A track line without messageId gets one derived from its content (the SHA-256 of its
canonical JSON, "{DERIVED_ID_PREFIX}<hex>"), so re-importing the file does not store it again;
two byte-for-byte identical such lines are one event.

Output: each rejected line is reported on stderr as "line N: reason" as soon as it is found;
the totals (stored, duplicates, ignored, rejected, blank) go to stdout at the end. The
progress bar goes to stderr, only on a terminal unless --progress is given.

Exit status:
  0  every line was stored, a duplicate, ignored or blank
  {EXIT_REJECTED}  some lines were rejected; all the other lines were stored
     (0 with --allow-rejects)
  {EXIT_FAILED}  the import could not run or stopped early (bad arguments, unknown source,
     unreadable or corrupt input, database unavailable); lines read before the failure are
     stored, so fix the cause and run the same command again
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); run the same command again to finish
"""


def _chunk_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_CHUNK_SIZE}")
    return size


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------


def _done_note(done_through: int) -> str:
    return f"lines 1-{done_through:,} are done" if done_through else "no line was imported"


def _find_source(name_or_slug: str | None) -> Source | None:
    if name_or_slug is None:
        return None
    source = Source.objects.filter(Q(slug=name_or_slug) | Q(name=name_or_slug)).first()
    if source is None:
        known = ", ".join(Source.objects.values_list("slug", flat=True)[:20]) or "none yet"
        raise CommandError(
            f"no source named {name_or_slug!r} (sources: {known}); create it in the admin",
            returncode=EXIT_FAILED,
        )
    return source


class Command(BaseCommand):
    help = (
        "Import message-activity events from an NDJSON file (track calls and Customer.io "
        "reporting-webhook payloads, mixed), with the same mapping and dedupe as the API."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = HELP_EPILOG
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="NDJSON file, optionally gzipped; - reads stdin")
        parser.add_argument(
            "--source",
            help="name or slug of the source to attribute the events to (default: none)",
        )
        parser.add_argument(
            "--chunk-size",
            type=_chunk_size,
            default=DEFAULT_CHUNK_SIZE,
            help=f"lines per transaction (default {DEFAULT_CHUNK_SIZE})",
        )
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar on stderr (default: only when stderr is a terminal)",
        )
        parser.add_argument(
            "--allow-rejects",
            action="store_true",
            help="exit 0 even when some lines were rejected",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["file"]
        err_stream = options.get("stderr") or sys.stderr
        try:
            source = _find_source(options["source"])
        except DatabaseError as error:
            raise CommandError(
                f"the database is unavailable: {error}", returncode=EXIT_FAILED
            ) from None
        if source is not None and not source.enabled:
            self.stderr.write(f"note: source {source.name!r} is disabled; importing anyway")

        def report(number: int, reason: str) -> None:
            tqdm.write(f"line {number}: {reason}", file=err_stream)

        if path == "-" and sys.stdin.isatty():
            self.stderr.write("Reading NDJSON from the terminal; end with Ctrl-D.")
        importer = ChunkImporter(source=source, report=report)
        show_progress = options["progress"]
        if show_progress is None:
            show_progress = err_stream.isatty()
        try:
            with open_input(path) as source_input:
                failure = self._run(
                    importer, source_input, options["chunk_size"], err_stream, show_progress
                )
        except OSError as error:  # the file could not be opened
            raise CommandError(f"cannot read {path}: {error}", returncode=EXIT_FAILED) from None

        self._summary(path, importer.totals)
        if failure:
            raise CommandError(failure[0], returncode=failure[1])
        if importer.totals.rejected and not options["allow_rejects"]:
            raise CommandError(
                f"{importer.totals.rejected} line(s) rejected (listed on stderr); the other "
                "lines were stored, duplicates, ignored or blank. Pass --allow-rejects to exit 0 "
                "in that case.",
                returncode=EXIT_REJECTED,
            )

    def _run(
        self,
        importer: ChunkImporter,
        source_input: Input,
        chunk_size: int,
        err_stream: IO[str],
        show_progress: bool,
    ) -> tuple[str, int] | None:
        """Import every line; returns (message, exit status) when the import stops early."""
        by_bytes = source_input.position is not None
        bar = tqdm(
            total=source_input.size,
            unit="B" if by_bytes else " lines",
            unit_scale=by_bytes,
            unit_divisor=1024,
            file=err_stream,
            disable=not show_progress,
            dynamic_ncols=True,
        )
        done = 0

        def advance() -> None:
            nonlocal done
            now = source_input.position() if source_input.position else importer.totals.lines
            bar.update(now - done)
            done = now
            totals = importer.totals
            counts = {"stored": totals.stored, "duplicates": totals.duplicates}
            bar.set_postfix(counts | {"rejected": totals.rejected}, refresh=False)

        again = "run the same command again to finish (lines already stored count as duplicates)"
        try:
            for number, line in read_lines(source_input.lines, max_line_bytes=MAX_LINE_BYTES):
                importer.add(number, line)
                if importer.pending >= chunk_size:
                    importer.flush()
                    advance()
            importer.flush()
            advance()
        except (OSError, EOFError, zlib.error) as error:
            # Corrupt or truncated input: keep what was read intact, then stop.
            return self._stop_after_flush(importer, f"the input is unreadable: {error}", again)
        except DatabaseError as error:
            return (
                f"the database failed: {error}. {_done_note(importer.done_through)}; {again}.",
                EXIT_FAILED,
            )
        except KeyboardInterrupt:
            return (
                f"interrupted; {_done_note(importer.done_through)}; {again}.",
                EXIT_INTERRUPTED,
            )
        finally:
            # Lines already found bad are reported whatever stopped the import.
            importer.report_rejections()
            bar.close()
        return None

    @staticmethod
    def _stop_after_flush(importer: ChunkImporter, problem: str, again: str) -> tuple[str, int]:
        try:
            importer.flush()
        except DatabaseError as error:
            problem += f"; the database failed too: {error}"
        return f"{problem}. {_done_note(importer.done_through)}; {again}.", EXIT_FAILED

    def _summary(self, path: str, totals: ImportTotals) -> None:
        name = "stdin" if path == "-" else path
        ignored = sum(totals.ignored.values())
        ignored_detail = ", ".join(f"{kind} {n:,}" for kind, n in sorted(totals.ignored.items()))
        rows = [
            ("stored", totals.stored, ""),
            ("duplicates", totals.duplicates, ""),
            ("ignored", ignored, f"  ({ignored_detail})" if ignored_detail else ""),
            ("rejected", totals.rejected, ""),
            ("blank", totals.blank, ""),
        ]
        self.stdout.write(f"{totals.lines:,} lines read from {name}")
        for label, count, detail in rows:
            self.stdout.write(f"  {label:<11}{count:>12,}{detail}")
