"""The deliveries list: a search by id, person or email; the deliveries behind a funnel step;
or the most recent ones."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from dashboard import selectors
from dashboard.filters import Filters, channel_label
from dashboard.pages.delivery_rows import (
    FIRST_TIME_COLUMNS,
    ParentLabels,
    list_dataset,
    list_rows,
    parent_link,
)
from dashboard.pages.page import Page

LIST_LIMIT = 100
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


def deliveries_page(filters: Filters, *, text: str | None, reached: str | None) -> Page:
    page = Page(title="Deliveries", section="deliveries")
    text = (text or "").strip() or None
    notices: list[str] = []
    if reached is not None and reached not in REACHABLE:
        notices.append(f"Unknown step {reached!r}; showing the most recent deliveries instead.")
        reached = None
    page.context["keep_params"] = {
        key: value for key, value in (("q", text), ("reached", reached)) if value
    }
    page.context["search_text"] = text or ""
    # The search form keeps the filters (the list they lead back to), never the drill-down.
    page.context["search_hidden"] = filters.params()
    labels = selectors.parents()

    if text:
        rows, listing = _search(text)
    elif reached:
        rows, listing = _reaching(filters, labels, reached)
    else:
        rows, listing = _recent(filters, labels)
    page.context.update(listing)

    page.context["notices"] = notices
    shown = list_rows(rows, labels)
    page.context["rows"] = shown
    page.context["limited"] = len(rows) >= LIST_LIMIT
    page.context["limit"] = LIST_LIMIT
    page.add_dataset(list_dataset("deliveries", shown))
    return page


Listing = tuple[list[dict[str, Any]], dict[str, Any]]


def _search(text: str) -> Listing:
    """Deliveries whose id, person id or email is exactly the text."""
    rows = selectors.deliveries_matching(text, limit=LIST_LIMIT)
    caption = (
        f"Deliveries whose id, person id or email is exactly “{text}”"
        if rows
        else f"No delivery, person or email is exactly “{text}”."
    )
    return rows, {"mode": "search", "caption": caption}


def _reaching(filters: Filters, labels: ParentLabels, reached: str) -> Listing:
    """The deliveries behind a funnel step: the newest that reached it."""
    rows = selectors.deliveries_reaching(filters, f"{reached}_at", limit=LIST_LIMIT)
    return rows, {
        "mode": "reached",
        "caption": _caption(filters, labels, reached=reached),
        "clear_url": reverse("dashboard:deliveries") + filters.query(),
    }


def _recent(filters: Filters, labels: ParentLabels) -> Listing:
    rows = selectors.deliveries_reaching(filters, "created_at", limit=LIST_LIMIT)
    return rows, {"mode": "recent", "caption": _caption(filters, labels, reached=None)}


def _caption(filters: Filters, labels: ParentLabels, *, reached: str | None) -> str:
    """'Email deliveries of Campaign 3 · Welcome sent in the last 30 days that were opened'."""
    what = f"{channel_label(filters.channel)} deliveries" if filters.channel else "Deliveries"
    if filters.parent_kind is not None and filters.parent_id is not None:
        what += " of " + parent_link(filters.parent_kind, filters.parent_id, labels)[0]
    caption = f"{what} sent {filters.period_phrase}"
    if reached and reached != "sent":
        caption += " " + REACHED_WORDING.get(reached, f"that reached {reached}")
    return caption
