"""The deliveries list: a search by id, person or email; the deliveries behind a funnel step
(the same set as the step's number, with its total, paged, and all of it as a streamed CSV);
or the most recent ones."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.urls import reverse

from dashboard import funnel_step_selectors, selectors
from dashboard.filters import Filters, channel_label
from dashboard.pages.csv_cells import spreadsheet_cell
from dashboard.pages.delivery_rows import (
    FIRST_TIME_COLUMNS,
    LIST_COLUMNS,
    ParentLabels,
    list_cells,
    list_dataset,
    list_rows,
    parent_link,
)
from dashboard.pages.page import Page

LIST_LIMIT = 100  # a search's matches
PAGE_SIZE = 100  # a funnel step's (or the recent list's) rows per page
# The metrics a funnel step (or any link) may ask the list for: "opened", "human_clicked", ...
REACHABLE = tuple(column.removesuffix("_at") for column in FIRST_TIME_COLUMNS)
# How the list's caption ends ("Email deliveries sent in the last 30 days that were opened").
REACHED_WORDING = {
    "delivered": "that were delivered",
    "opened": "that were opened",
    "human_opened": "that were opened by a person (machine opens left out)",
    "clicked": "that were clicked",
    "human_clicked": "that were clicked by a person (machine clicks left out)",
    "converted": "that converted",
    "unsubscribed": "that led to an unsubscribe",
    "bounced": "that bounced",
    "suppressed": "that were suppressed",
    "spammed": "that were marked as spam",
    "failed": "that failed",
    "undeliverable": "that were undeliverable",
    "deferred": "that were deferred",
    "replied": "that were replied to",
    "drafted": "that were drafted",
    "attempted": "that were attempted",
}


def _checked_step(reached: str | None, notices: list[str]) -> str | None:
    if reached is not None and reached not in REACHABLE:
        notices.append(f"Unknown step {reached!r}; showing the most recent deliveries instead.")
        return None
    return reached


def _column(reached: str | None) -> str:
    return f"{reached}_at" if reached else "created_at"


def deliveries_page(
    filters: Filters, *, text: str | None, reached: str | None, page_number: int = 1
) -> Page:
    page = Page(title="Deliveries", section="deliveries")
    text = (text or "").strip() or None
    notices: list[str] = []
    reached = _checked_step(reached, notices)
    page.context["keep_params"] = {
        key: value for key, value in (("q", text), ("reached", reached)) if value
    }
    page.context["search_text"] = text or ""
    # The search form keeps the filters (the list they lead back to), never the drill-down.
    page.context["search_hidden"] = filters.params()
    labels = selectors.parents()

    if text:
        rows, listing = _search(text)
        listing["limited"] = len(rows) >= LIST_LIMIT
    else:
        rows, listing = _listed(filters, labels, reached, page_number)
    page.context.update(listing)

    page.context["notices"] = notices
    shown = list_rows(rows, labels)
    page.context["rows"] = shown
    page.context["limit"] = LIST_LIMIT
    page.add_dataset(list_dataset("deliveries", shown))
    return page


Listing = tuple[list[dict[str, Any]], dict[str, Any]]


def _search(text: str) -> Listing:
    """Deliveries whose id, person id or email is exactly the text."""
    rows = selectors.deliveries_matching(text, limit=LIST_LIMIT)
    caption = (
        f"Deliveries whose id or person id starts with “{text}”, or whose email is “{text}” "
        "(in any case)"
        if rows
        else f"No delivery or person id starts with “{text}”, and no email is “{text}”."
    )
    return rows, {"mode": "search", "caption": caption}


def _listed(
    filters: Filters, labels: ParentLabels, reached: str | None, page_number: int
) -> Listing:
    """The deliveries behind a funnel step (or first seen in the period): their total and one
    page of them, newest first, with links to the pages around it."""
    column = _column(reached)
    total = funnel_step_selectors.step_count(filters, column)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(max(page_number, 1), pages)
    rows = funnel_step_selectors.step_page(
        filters, column, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    base = reverse("dashboard:deliveries")

    def page_url(n: int) -> str:
        return base + filters.query(reached=reached, page=n if n > 1 else None)

    listing: dict[str, Any] = {
        "mode": "reached" if reached else "recent",
        "caption": _caption(filters, labels, reached=reached),
        "total": total,
        "first_shown": (number - 1) * PAGE_SIZE + 1 if rows else 0,
        "last_shown": (number - 1) * PAGE_SIZE + len(rows),
        "page_number": number,
        "pages": pages,
        "previous_url": page_url(number - 1) if number > 1 else "",
        "next_url": page_url(number + 1) if number < pages else "",
    }
    if reached:
        listing["clear_url"] = base + filters.query()
    return rows, listing


def deliveries_export(filters: Filters, *, reached: str | None) -> StreamingHttpResponse:
    """Every delivery of the list (a funnel step's, or the period's), as a CSV written while
    it is read, a few thousand rows at a time: constant memory however many there are."""
    reached = _checked_step(reached, [])
    labels = selectors.parents()
    rows = funnel_step_selectors.step_all(filters, _column(reached))

    def lines() -> Iterator[str]:
        out = _Line()
        writer = csv.writer(out)
        writer.writerow(LIST_COLUMNS)
        yield out.take()
        for row in rows:
            [shown] = list_rows([row], labels)
            writer.writerow([spreadsheet_cell(cell) for cell in list_cells(shown)])
            yield out.take()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    name = f"deliveries-{reached or 'recent'}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


class _Line:
    """A file for csv.writer that hands back what was written since the last take()."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


def _caption(filters: Filters, labels: ParentLabels, *, reached: str | None) -> str:
    """'Email deliveries of Campaign 3 · Welcome sent in the last 30 days that were opened'."""
    what = f"{channel_label(filters.channel)} deliveries" if filters.channel else "Deliveries"
    if filters.parent_kind is not None and filters.parent_id is not None:
        what += " of " + parent_link(filters.parent_kind, filters.parent_id, labels)[0]
    caption = f"{what} sent {filters.period_phrase}"
    if reached and reached != "sent":
        caption += " " + REACHED_WORDING.get(reached, f"that reached {reached}")
    return caption
