"""Bulk import: parsed NDJSON lines through the ingest services, a chunk per transaction,
keeping each line's number for the report."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import transaction

from metrics_source.ingest import exact_json
from metrics_source.ingest.mapping import looks_like_webhook_payload
from metrics_source.ingest.ndjson import UTF8_BOM
from metrics_source.ingest.service import (
    MAX_WEBHOOK_BYTES,
    IngestResult,
    events_ingest_calls,
    events_ingest_webhooks,
)
from metrics_source.models import Origin, Source

# The largest body the webhook endpoint accepts; a longer line is rejected without being held
# in memory whole.
MAX_LINE_BYTES = MAX_WEBHOOK_BYTES
# Prefix of the messageId derived for track lines that have none (see derive_message_id).
DERIVED_ID_PREFIX = "import-"


def derive_message_id(call: dict[str, Any]) -> None:
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
    digest = hashlib.sha256(exact_json.dumps(canonical, sort_keys=True)).hexdigest()
    call["messageId"] = DERIVED_ID_PREFIX + digest


@dataclass(slots=True)
class ImportTotals:
    lines: int = 0
    blank: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: Counter[str] = field(default_factory=Counter)


class ChunkImporter:
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
            item = exact_json.loads(line.rstrip(b"\r\n"))
        except orjson.JSONDecodeError as error:
            self._reject(number, f"malformed JSON at column {error.colno}: {error.msg}")
            return
        if not isinstance(item, dict):
            self._reject(number, "each line must be a JSON object")
        elif looks_like_webhook_payload(item):
            self._webhooks.append(item)
            self._webhook_lines.append(number)
        else:
            derive_message_id(item)
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
