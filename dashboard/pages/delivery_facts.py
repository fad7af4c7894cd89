"""What a delivery's stored events say about it: the facts its summary row would hold (for a
delivery the rollup has not reached yet), and which opens and clicks were machines'."""

from __future__ import annotations

from typing import Any

import orjson

from dashboard.pages.delivery_rows import FIRST_TIME_COLUMNS
from metrics_source.summaries.metrics import ParentKind


def facts_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the summary would say, worked out from the events (the rollup has not caught up):
    the first value of each field in time order, the first time of each metric."""
    return (
        {"channel": events[0]["channel"]}
        | _parent(events)
        | _who_and_what(events)
        | {column: _first_time(events, column) for column in FIRST_TIME_COLUMNS}
    )


def _first(events: list[dict[str, Any]], key: str) -> Any:
    return next((e[key] for e in events if e.get(key) not in (None, "")), None)


def _parent(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The first parent named, by the kinds' order of precedence."""
    for column, kind in ParentKind.COLUMNS:
        if (value := _first(events, column)) is not None:
            return {"parent_kind": kind, "parent_id": value}
    return {"parent_kind": "", "parent_id": None}


def _who_and_what(events: list[dict[str, Any]]) -> dict[str, Any]:
    people = (e["user_id"] or e["anonymous_id"] for e in events)
    recipients = (as_dict(e["properties"]).get("recipient") or e["email"] for e in events)
    subjects = (as_dict(e["properties"]).get("subject") for e in events)
    return {
        "action_id": _first(events, "action_id"),
        "person_id": next((p for p in people if p), None),
        "recipient": next((r for r in recipients if r), None),
        "subject": next((s for s in subjects if s), None),
        "source_id": _first(events, "source_id"),
        "created_at": events[0]["timestamp"],
        "last_event_at": events[-1]["timestamp"],
        "events": len(events),
    }


def _first_time(events: list[dict[str, Any]], column: str) -> Any:
    """When the metric was first reached; human_* leave machine opens and clicks out."""
    metric = column.removesuffix("_at")
    human = metric.startswith("human_")
    wanted = metric.removeprefix("human_")
    return next(
        (
            e["timestamp"]
            for e in events
            if e["metric"] == wanted and not (human and is_machine(e["properties"]))
        ),
        None,
    )


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column as read through a plain cursor (text) or a model (data)."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def is_test(properties: Any) -> bool:
    """An event marked as a test (``"test": true``), which the summaries leave out, as the
    rollup reads the mark (metrics_source/summaries/chunk_statement.TEST_EVENT_SQL)."""
    return as_dict(properties).get("test") in (True, "true")


def is_machine(properties: Any) -> bool:
    """Prefetched or proxied opens and machine clicks, as the rollup tells them apart."""
    properties = as_dict(properties)
    flags = ("prefetched", "proxied", "machine")
    return any(properties.get(flag) in (True, "true") for flag in flags)
