"""Import message-activity events from NDJSON through the same mapping and dedupe as the API.

Each line is a Segment-compatible call or a Customer.io reporting-webhook payload; both kinds
may be mixed freely. Lines are read in chunks and each chunk is stored with one INSERT per kind,
so memory stays flat whatever the file size, and a re-run stores nothing twice.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import stat
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Protocol

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction
from django.db.models import Q
from tqdm import tqdm

from metrics_source.ingest import (
    MAX_WEBHOOK_BYTES,
    IngestResult,
    events_ingest_calls,
    events_ingest_webhooks,
)
from metrics_source.mapping import looks_like_webhook_payload
from metrics_source.models import Origin, Source

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# The largest body the webhook endpoint accepts; a longer line is rejected without being held
# in memory whole (a file with no newlines at all must not exhaust memory).
MAX_LINE_BYTES = MAX_WEBHOOK_BYTES
DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 10_000
# Prefix of the messageId derived for track lines that have none (see _derive_message_id).
DERIVED_ID_PREFIX = "import-"

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
# Reading: plain or gzip, file or stdin, line by line with a bounded line length
# ------------------------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        # read1: return what a pipe has now instead of waiting for a full buffer.
        read = getattr(self._rest, "read1", self._rest.read)
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(slots=True)
class _Input:
    lines: _LineReader
    # Bytes consumed so far and the total, for the progress bar; None when the size is unknown.
    position: Callable[[], int] | None
    size: int | None


@contextmanager
def _open_input(path: str) -> Iterator[_Input]:
    raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        regular = path != "-" and stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
        head = raw.read(2)
        stream: _LineReader
        if regular:
            raw.seek(0)
            stream = raw
        else:
            # A pipe (stdin, a FIFO) cannot seek back: put the sniffed bytes back in front.
            stream = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 16)
        if head == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        yield _Input(
            lines=stream,
            position=raw.tell if regular else None,
            size=os.fstat(raw.fileno()).st_size if regular else None,
        )
    finally:
        if path != "-":
            raw.close()


def _read_lines(stream: _LineReader) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line, from 1; bytes is None for a line over the limit."""
    number = 0
    while line := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 16)
            yield number, None
        else:
            yield number, line


# ------------------------------------------------------------------------------------------
# Importing: chunks of lines through the ingest services
# ------------------------------------------------------------------------------------------


def _derive_message_id(call: dict[str, Any]) -> None:
    """Give a track call without messageId one derived from its content.

    The API assigns a random id, which would make a second import of the same file store the
    line again; a digest of the canonical JSON is the same on every run.
    """
    if call.get("type", "track") != "track":
        return
    message_id = call.get("messageId")
    if message_id is not None and not (isinstance(message_id, str) and not message_id.strip()):
        return
    canonical = {key: value for key, value in call.items() if key != "messageId"}
    canonical["type"] = "track"
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    call["messageId"] = DERIVED_ID_PREFIX + digest


@dataclass(slots=True)
class ImportTotals:
    lines: int = 0
    blank: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: Counter[str] = field(default_factory=Counter)


class _ChunkImporter:
    """Collects parsed lines and stores them a chunk at a time, keeping each line's number."""

    def __init__(self, *, source: Source | None, report: Callable[[int, str], None]) -> None:
        self.source = source
        self.totals = ImportTotals()
        self._report = report
        self._calls: list[Any] = []
        self._call_lines: list[int] = []
        self._webhooks: list[Any] = []
        self._webhook_lines: list[int] = []
        # Held until the chunk is stored, so rejections are reported in line order.
        self._rejections: list[tuple[int, str]] = []

    @property
    def pending(self) -> int:
        return len(self._calls) + len(self._webhooks) + len(self._rejections)

    @property
    def done_through(self) -> int:
        """The last line up to which every outcome is final (nothing before it is pending)."""
        first_pending = min(self._call_lines[:1] + self._webhook_lines[:1], default=None)
        return self.totals.lines if first_pending is None else first_pending - 1

    def add(self, number: int, line: bytes | None) -> None:
        self.totals.lines = number
        if number == 1 and line is not None:
            line = line.removeprefix(UTF8_BOM)
        if line is None:
            self._reject(number, f"the line is longer than {MAX_LINE_BYTES // 1024} KB")
        elif not line.strip():
            self.totals.blank += 1
        else:
            self._add_json(number, line)

    def _add_json(self, number: int, line: bytes) -> None:
        try:
            # Without the line end, so a column in the error message is a column of the line.
            item = orjson.loads(line.rstrip(b"\r\n"))
        except orjson.JSONDecodeError as error:
            self._reject(number, f"malformed JSON at column {error.colno}: {error.msg}")
            return
        if not isinstance(item, dict):
            self._reject(number, "each line must be a JSON object")
        elif looks_like_webhook_payload(item):
            self._webhooks.append(item)
            self._webhook_lines.append(number)
        else:
            _derive_message_id(item)
            self._calls.append(item)
            self._call_lines.append(number)

    def flush(self) -> None:
        """Store the pending lines in one transaction: one INSERT per kind of line."""
        if self._calls or self._webhooks:
            self._store()
        self.report_rejections()

    def report_rejections(self) -> None:
        for number, reason in sorted(self._rejections):
            self._report(number, reason)
        self._rejections = []

    def _store(self) -> None:
        received_at = datetime.now(UTC)
        with transaction.atomic():
            calls = events_ingest_calls(
                source=self.source,
                calls=self._calls,
                origin=Origin.IMPORT,
                received_at=received_at,
            )
            webhooks = events_ingest_webhooks(
                source=self.source,
                payloads=self._webhooks,
                origin=Origin.IMPORT,
                received_at=received_at,
            )
        # Counted after the commit, so the totals never claim what a failed commit lost.
        self._count(calls, self._call_lines)
        self._count(webhooks, self._webhook_lines)
        self._calls, self._call_lines, self._webhooks, self._webhook_lines = [], [], [], []

    def _count(self, result: IngestResult, line_numbers: list[int]) -> None:
        self.totals.stored += result.stored
        self.totals.duplicates += result.duplicates
        self.totals.ignored.update(result.ignored)
        # The services number items by their position in the list they were given.
        for rejection in sorted(result.rejected, key=lambda r: r.index):
            reason = rejection.error
            if rejection.message_id and not rejection.message_id.startswith(DERIVED_ID_PREFIX):
                reason += f" (messageId {rejection.message_id!r})"
            self._reject(line_numbers[rejection.index], reason)

    def _reject(self, number: int, reason: str) -> None:
        self.totals.rejected += 1
        self._rejections.append((number, reason))


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
        importer = _ChunkImporter(source=source, report=report)
        show_progress = options["progress"]
        if show_progress is None:
            show_progress = err_stream.isatty()
        try:
            with _open_input(path) as source_input:
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
        importer: _ChunkImporter,
        source_input: _Input,
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
            for number, line in _read_lines(source_input.lines):
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
    def _stop_after_flush(importer: _ChunkImporter, problem: str, again: str) -> tuple[str, int]:
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
