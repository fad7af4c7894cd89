"""Names imported from a CSV: ``kind,id,name`` rows (a header first), as exported from a
spreadsheet of Customer.io's campaigns. Every good row is applied, every bad one reported by
its line; an empty name removes that name."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.db import transaction

from metrics_source.naming.models import MessageName, NameKind

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_NAME_LENGTH = MessageName._meta.get_field("name").max_length
KINDS = {choice.value for choice in NameKind}
HEADER = ["kind", "id", "name"]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def _row_problem(kind: str, number: str, name: str) -> str:
    if kind not in KINDS:
        return f"unknown kind {kind[:40]!r} (one of {', '.join(sorted(KINDS))})"
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        return f"the id must be a whole number, not {number[:40]!r}"
    if len(name) > (MAX_NAME_LENGTH or 200):
        return f"the name is longer than {MAX_NAME_LENGTH} characters"
    return ""


def names_import(data: bytes) -> ImportResult:
    """Apply a CSV of names (UTF-8, a BOM allowed). Raises ValueError for a file that is not
    such a CSV at all (too large, not UTF-8, another header)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ValueError(f"the file is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if header != HEADER:
        raise ValueError("the first line must be the header: kind,id,name")
    result = ImportResult()
    with transaction.atomic():
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 3:
                result.errors.append(f"line {line}: {len(row)} columns, not 3 (kind,id,name)")
                continue
            kind, number, name = (cell.strip() for cell in row)
            kind = kind.lower()
            problem = _row_problem(kind, number, name)
            if problem:
                result.errors.append(f"line {line}: {problem}")
                continue
            if not name:
                result.removed += MessageName.objects.filter(
                    kind=kind, object_id=int(number)
                ).delete()[0]
                continue
            _, created = MessageName.objects.update_or_create(
                kind=kind, object_id=int(number), defaults={"name": name}
            )
            result.created += created
            result.updated += not created
    return result
