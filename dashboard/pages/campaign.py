"""One campaign (or broadcast, newsletter, transactional message): tiles, funnel per channel,
series, per-action breakdown, most-clicked links and failure messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from django.http import Http404
from django.urls import reverse

from dashboard import selectors
from dashboard.charts.comparison import grouped_bars_figure
from dashboard.charts.palette import METRIC_COLOURS
from dashboard.charts.series import series_figure
from dashboard.filters import Filters, channel_label, parent_label
from dashboard.links import http_link
from dashboard.pages.formatting import number
from dashboard.pages.funnels import (
    FUNNEL_METRICS,
    funnels_by_channel,
    funnels_chart,
    funnels_dataset,
)
from dashboard.pages.page import Chart, Dataset, Page
from dashboard.pages.series import SERIES_METRICS, series_dataset
from dashboard.pages.tables import (
    FAILURE_MESSAGE_COLUMNS,
    failure_message_cells,
    failure_message_rows,
    rate_cells,
)
from dashboard.pages.tiles import kpi_tiles
from dashboard.pages.totals import raw
from dashboard.rates import NO_DELIVERED_STEP, MetricTotal, Totals, channel_has, rates_for
from dashboard.selectors import SeriesPoint
from metrics_source.summaries.metrics import ParentKind

# The per-action table's counts; the chart draws the funnel's steps among them.
ACTION_METRICS = ("sent", "delivered", "opened", "clicked", "converted", "bounced", "unsubscribed")
ACTION_RATES = ("open_rate", "click_rate", "conversion_rate")
ACTION_COLOURS = {metric.capitalize(): METRIC_COLOURS[metric] for metric in FUNNEL_METRICS}
# Actions in the chart (all of them in the table).
CHARTED_ACTIONS = 12


def campaign_detail(kind: str, parent_id: int) -> dict[str, Any]:
    """What the parent is (its label, channels, first and last event); Http404 if never seen."""
    if kind not in ParentKind.LABELS or not kind:
        raise Http404("no such kind of message")
    detail = selectors.parent_detail(kind, parent_id)
    if detail is None:
        raise Http404("never seen")
    return detail


def comparison_absent(filters: Filters, first_seen: datetime) -> str:
    """Why the tiles carry no change against the previous period, or "" when they do: a
    lifetime has no earlier period, and a parent that began after the previous period
    started would be compared with (partly) nothing."""
    if filters.lifetime:
        return "Over the message's lifetime: there is no earlier period to compare with."
    if first_seen > filters.previous().start:
        return (
            "Not compared with the previous period: this message's first event came after "
            "that period began."
        )
    return ""


def campaign_page(filters: Filters, detail: dict[str, Any]) -> Page:
    kind, parent_id = detail["parent_kind"], detail["parent_id"]
    scoped = replace(filters, parent_kind=kind, parent_id=parent_id)
    page = Page(title=parent_label(kind, parent_id, detail["label"]), section="campaigns")
    # One scan gives the series and the totals (see selectors.series_and_totals).
    points, current = selectors.series_and_totals(scoped)
    uncompared = comparison_absent(filters, detail["first_seen"])
    previous = {} if uncompared else selectors.totals_by_channel(scoped.previous())
    page.context.update(_heading(filters, detail, current, previous))
    page.context["comparison_absent"] = uncompared
    _add_funnels(page, scoped, current)
    _add_series(page, points, scoped)
    _add_actions(page, scoped)
    _add_links(page, scoped)
    _add_failure_messages(page, scoped)
    return page


def _heading(
    filters: Filters,
    detail: dict[str, Any],
    current: dict[str, Totals],
    previous: dict[str, Totals],
) -> dict[str, Any]:
    """The context above the charts: what the parent is, its channels, tiles and totals."""
    channels = set(detail["channels"]) | set(current)
    return {
        "hide_parent_filter": True,
        "parent": detail,
        "kind_label": ParentKind.LABELS[detail["parent_kind"]],
        "parent_id": detail["parent_id"],
        "parent_name": detail["label"],
        "channel_labels": ", ".join(channel_label(c) for c in sorted(channels)),
        "has_data": bool(current),
        "tiles": kpi_tiles(current, previous, channels, compared=bool(previous)),
        "campaigns_url": reverse("dashboard:campaigns") + filters.query(parent=None),
        "channels_without_delivered": sorted(
            channel_label(c) for c in channels if c in NO_DELIVERED_STEP
        ),
        "totals": {
            "opens": number(raw(current, "opened")),
            "clicks": number(raw(current, "clicked")),
        },
        "first_seen": detail["first_seen"],
        "last_seen": detail["last_seen"],
    }


def _add_funnels(page: Page, scoped: Filters, current: dict[str, Totals]) -> None:
    """A funnel per channel; its drill-downs keep the parent. Channels with the most steps
    come first: the chart's step order follows the first channel."""
    channel_funnels = sorted(funnels_by_channel(scoped, current), key=lambda f: -len(f["steps"]))
    page.add_dataset(funnels_dataset(channel_funnels))
    page.add_chart(funnels_chart(channel_funnels, title="Funnel (share of sent)"))


def _add_series(page: Page, points: list[SeriesPoint], scoped: Filters) -> None:
    page.add_dataset(series_dataset(points))
    page.add_chart(
        Chart(
            "series",
            "Over time",
            # Every interval, zero where nothing happened: no line drawn across quiet days.
            series_figure(
                points,
                metrics=SERIES_METRICS,
                starts=scoped.interval_starts(),
                unfinished=scoped.unfinished_interval(),
            ),
            "series",
            note="Unique deliveries per metric in each interval; the CSV adds every event.",
        )
    )


# --- per action ----------------------------------------------------------------------------


def _add_actions(page: Page, scoped: Filters) -> None:
    """The per-action counts, on the page's date basis, with the names people gave them."""
    rows = selectors.totals_by_action(scoped)
    names = selectors.names_of("action", [r["action_id"] for r in rows if r["action_id"]])
    actions = [_action_row(row, names.get(row["action_id"], "")) for row in rows]
    page.context["actions"] = actions
    page.add_dataset(
        Dataset(
            "actions",
            ["action_id", "action_name", "channel", *ACTION_METRICS, *ACTION_RATES],
            [
                (
                    a["action_id"],
                    a["name"] or None,
                    a["channel"],
                    *(a[m] for m in ACTION_METRICS),
                    *(a["rates"][key] for key in ACTION_RATES),
                )
                for a in actions
            ],
        )
    )
    page.add_chart(_actions_chart(actions[:CHARTED_ACTIONS]))


def _action_row(row: dict[str, Any], name: str = "") -> dict[str, Any]:
    rates = rates_for(_action_totals(row))
    action = row["action_id"]
    label = f"Action {action}" if action is not None else "No action"
    shown = name or (str(action) if action is not None else "—")
    return {
        **row,
        "name": name,
        "label": f"{label} · {name}" if name else label,
        "axis_label": f"{shown} · {channel_label(row['channel'])}",
        "channel_label": channel_label(row["channel"]),
        "counts": [_count_cell(row, metric) for metric in ACTION_METRICS],
        "rates": rates,
        "rate_cells": rate_cells(rates, ACTION_RATES),
    }


def _action_totals(row: dict[str, Any]) -> dict[str, Totals]:
    """An action's reach as totals rates_for can read (unique deliveries per metric)."""
    return {
        row["channel"]: {
            metric: MetricTotal(deliveries=row[metric])
            for metric in (*FUNNEL_METRICS, "bounced")
            if row.get(metric)
        }
    }


def _count_cell(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """The count, or "—" for a step the channel never reports (in-app has no delivered)."""
    if not channel_has(row["channel"], metric):
        return {"raw": "", "text": "—"}
    return {"raw": row[metric], "text": number(row[metric])}


def _actions_chart(actions: list[dict[str, Any]]) -> Chart:
    return Chart(
        "actions",
        "By action",
        grouped_bars_figure(
            [a["axis_label"] for a in actions],
            {metric.capitalize(): [a[metric] for a in actions] for metric in FUNNEL_METRICS},
            colours=ACTION_COLOURS,
        ),
        "actions",
        note="Unique deliveries reaching each step in the period, by action.",
    )


# --- links and failures --------------------------------------------------------------------


def _add_links(page: Page, scoped: Filters) -> None:
    """The most-clicked links, machine clicks apart."""
    links = [_link_row(link) for link in selectors.top_links(scoped)]
    page.context["links"] = links
    page.add_dataset(
        Dataset(
            "links",
            ["link", "clicks", "human_clicks", "machine_clicks"],
            [(r["link"], r["clicks"], r["human_clicks"], r["machine_clicks"]) for r in links],
        )
    )


def _link_row(link: dict[str, Any]) -> dict[str, Any]:
    clicks, machine = int(link["clicks"]), int(link["machine_clicks"])
    return {
        "link": link["link"],
        # Rendered as a link only when it is http(s); anything else (javascript:, ...) as text.
        "href": http_link(link["link"]),
        "clicks": clicks,
        "machine_clicks": machine,
        "human_clicks": clicks - machine,
        "clicks_text": number(clicks),
        "human_text": number(clicks - machine),
        "machine_text": number(machine),
    }


def _add_failure_messages(page: Page, scoped: Filters) -> None:
    messages = failure_message_rows(selectors.failure_messages(scoped, limit=5))
    page.context["failure_messages"] = messages
    page.add_dataset(
        Dataset(
            "failure_messages",
            FAILURE_MESSAGE_COLUMNS,
            [failure_message_cells(m) for m in messages],
        )
    )
