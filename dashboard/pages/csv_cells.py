"""Table cells as a CSV download writes them, safe to open in a spreadsheet.

Text from events (a recipient, a subject, a failure message, a clicked link) is written by
whoever holds a write key; a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab,
carriage return or line feed, which some spreadsheets skip before reading one of those) is
run as a formula when the file is opened. As OWASP recommends, such a text cell gets a single
quote in front, which spreadsheets read as "this is text" and show without it.

Numbers are written as numbers: the dashboard computed them, and ``-3`` or ``-0.25`` is a
negative number a spreadsheet reads as one (not a formula), so they keep summing. Only ints,
floats and Decimals count as numbers; text that happens to look like one ("-3" from an event)
is text and is escaped. Floats (rates, as fractions) are rounded to FLOAT_DIGITS places: a
hundredth of a percent, not ``0.6666666666666666``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
FLOAT_DIGITS = 4


def spreadsheet_cell(value: Any) -> Any:
    """The value as a CSV cell: None empty, numbers as they are, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    if isinstance(value, int | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
