"""A delivery as the lists show it: how far it got (a coloured pill), links to its parent and
person, and its row in a table and in the CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from dashboard.filters import channel_label, parent_label
from dashboard.pages.page import Dataset
from metrics_source.summaries.metrics import FIRST_TIMES

FIRST_TIME_COLUMNS = tuple(ft.column for ft in FIRST_TIMES)
# How far a delivery got, best first; a failure outranks them all (it is what needs a look).
FAILURES = ("bounced", "failed", "suppressed", "spammed", "undeliverable")
PROGRESS = ("converted", "clicked", "opened", "delivered", "sent", "attempted", "drafted")
# Pill colours (dashboard.css): ok green, pending blue, failed amber, bad red.
METRIC_TONES = {
    **dict.fromkeys(("converted", "clicked", "opened", "delivered", "replied"), "ok"),
    **dict.fromkeys(("sent", "attempted", "drafted"), "pending"),
    **dict.fromkeys(("unsubscribed", "deferred"), "failed"),
    **dict.fromkeys(FAILURES, "bad"),
}
LIST_COLUMNS = (
    "delivery_id",
    "channel",
    "parent_kind",
    "parent_id",
    "action_id",
    "person_id",
    "recipient",
    "subject",
    "created_at",
    "status",
    *FIRST_TIME_COLUMNS,
)

ParentLabels = dict[tuple[str, int], dict[str, Any]]


def delivery_url(delivery_id: str) -> str:
    return reverse("dashboard:delivery", args=[delivery_id])


def person_url(person_id: str | None) -> str:
    return reverse("dashboard:person", args=[person_id]) if person_id else ""


def parent_link(kind: str, parent_id: int | None, labels: ParentLabels) -> tuple[str, str]:
    """(label, URL of the campaign page) of a delivery's parent; ("", "") when it has none."""
    if not kind or parent_id is None:
        return "", ""
    row = labels.get((kind, parent_id)) or {}
    return (
        parent_label(kind, parent_id, row.get("label") or ""),
        reverse("dashboard:campaign", args=[kind, parent_id]),
    )


def status_of(first_times: dict[str, Any]) -> tuple[str, str]:
    """The furthest metric a delivery reached, as (metric, pill tone)."""
    for metric in (*FAILURES, *PROGRESS):
        if first_times.get(f"{metric}_at"):
            return metric, METRIC_TONES.get(metric, "")
    return "created", ""


def list_rows(rows: list[dict[str, Any]], labels: ParentLabels) -> list[dict[str, Any]]:
    """Summary rows as the result table shows them."""
    return [_list_row(row, labels) for row in rows]


def _list_row(row: dict[str, Any], labels: ParentLabels) -> dict[str, Any]:
    metric, tone = status_of(row)
    parent, parent_url = parent_link(row["parent_kind"], row["parent_id"], labels)
    return {
        **row,
        "url": delivery_url(row["delivery_id"]),
        "channel_label": channel_label(row["channel"]),
        "parent_label": parent,
        "parent_url": parent_url,
        "person_url": person_url(row["person_id"]),
        "status": metric,
        "tone": tone,
        "unsubscribed": bool(row.get("unsubscribed_at")),
    }


def list_dataset(name: str, rows: list[dict[str, Any]]) -> Dataset:
    return Dataset(name, LIST_COLUMNS, [list_cells(row) for row in rows])


def list_cells(row: dict[str, Any]) -> list[Any]:
    """A shown row's cells in LIST_COLUMNS order, as the CSV writes them."""
    return [_cell(row, column) for column in LIST_COLUMNS]


def _cell(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    return value.isoformat() if isinstance(value, datetime) else value
