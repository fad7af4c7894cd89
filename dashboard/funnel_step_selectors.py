"""The deliveries behind a funnel step, by the step's own definition: their number, one page
of them, and all of them for a CSV, read in pieces so memory stays constant however many.

A funnel step counts a delivery once (metrics_source/summaries/chunk_statement.py, "deltas"):
on the event basis in the hour its metric was first reached, on the sent basis in the hour it
was sent (or first seen) when it reached the metric at all. Periods start and end on whole
hours, so the same bounds on the delivery summaries' first times give the same deliveries;
a test holds the count equal to the step's number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dashboard.filters import Filters
from dashboard.selectors import _SUMMARY_LIST_COLUMNS, SUMMARY, _dicts, _rows, dimension_clauses
from metrics_source.summaries.metrics import FIRST_TIMES, Basis

# "created_at" lists the deliveries first seen in the period (the list with no step chosen).
LISTABLE = frozenset({ft.column for ft in FIRST_TIMES} | {"created_at"})
# Rows per query when reading all of them (the CSV).
CHUNK = 2000


def _where(filters: Filters, column: str) -> tuple[list[str], list[Any]]:
    assert column in LISTABLE, column
    if column == "created_at" or filters.basis_value == Basis.EVENT:
        clauses = [f"{column} >= %s", f"{column} < %s"]
    else:
        clauses = [
            "COALESCE(sent_at, created_at) >= %s",
            "COALESCE(sent_at, created_at) < %s",
            f"{column} IS NOT NULL",
        ]
    more, values = dimension_clauses(filters)
    return clauses + more, [filters.start, filters.end, *values]


def step_count(filters: Filters, column: str) -> int:
    clauses, params = _where(filters, column)
    rows = _rows(f"SELECT count(*) FROM {SUMMARY} WHERE {' AND '.join(clauses)}", params)
    return int(rows[0][0])


def step_page(filters: Filters, column: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """One page, newest first (by when each delivery was first seen)."""
    clauses, params = _where(filters, column)
    return _dicts(
        f"SELECT {_SUMMARY_LIST_COLUMNS} FROM {SUMMARY} WHERE {' AND '.join(clauses)} "
        "ORDER BY created_at DESC, delivery_id DESC LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )


def step_all(filters: Filters, column: str, *, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Every delivery of the step, newest first, ``chunk`` rows per query: each query starts
    after the last row of the one before (no OFFSET, no cursor held between them)."""
    clauses, params = _where(filters, column)
    after: tuple[str, str] | None = None
    while True:
        keyset = ["(created_at, delivery_id) < (%s::timestamptz, %s)"] if after else []
        # The position is kept as PostgreSQL's own text of the time: the rows' times are
        # held within what the pages can show, which would not be where the query stopped.
        rows = _dicts(
            f"SELECT {_SUMMARY_LIST_COLUMNS}, created_at::text AS position FROM {SUMMARY} "
            f"WHERE {' AND '.join(clauses + keyset)} "
            "ORDER BY created_at DESC, delivery_id DESC LIMIT %s",
            [*params, *(after or ()), chunk],
        )
        yield from rows
        if len(rows) < chunk:
            return
        after = (rows[-1]["position"], rows[-1]["delivery_id"])
