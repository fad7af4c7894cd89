"""Campaigns, broadcasts, newsletters and transactional messages: the list and one's detail."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import Http404
from django.urls import reverse

from dashboard import parent_selectors, selectors
from dashboard.charts.comparison import grouped_bars_figure, parent_comparison_figure
from dashboard.charts.funnels import funnel_figure
from dashboard.charts.palette import METRIC_COLOURS
from dashboard.charts.series import series_figure
from dashboard.filters import Filters, channel_label, parent_label
from dashboard.pages.channel import TABLE_RATES, failure_message_rows, kpi_tiles, rate_cells
from dashboard.pages.common import Chart, Dataset, Page, number
from dashboard.pages.overview import SERIES_METRICS, funnels, raw, unique
from dashboard.rates import (
    NO_DELIVERED_STEP,
    RATE_BY_KEY,
    MetricTotal,
    Totals,
    channel_has,
    rates_for,
)
from metrics_source.summaries.metrics import ParentKind

# Bars in the comparison chart: the busiest parents, so labels stay readable.
TOP_PARENTS = 15
# Column headings short enough to leave the name column room (the full name on hover).
SHORT_RATE_LABELS = {
    "delivery_rate": "Delivery",
    "open_rate": "Open",
    "click_rate": "Click",
    "click_to_open": "CTO",
    "conversion_rate": "Conv.",
    "bounce_rate": "Bounce",
    "unsubscribe_rate": "Unsub.",
    "spam_rate": "Spam",
}
ACTION_METRICS = ("sent", "delivered", "opened", "clicked", "converted", "bounced", "unsubscribed")
ACTION_COLOURS = {
    metric.capitalize(): METRIC_COLOURS[metric]
    for metric in ("sent", "delivered", "opened", "clicked", "converted")
}


def parent_url(filters: Filters, kind: str, parent_id: int) -> str:
    # The detail page names the parent: the parent filter would only repeat it.
    return reverse("dashboard:campaign", args=[kind, parent_id]) + filters.query(parent=None)


def kind_label(kind: str) -> str:
    return ParentKind.LABELS.get(kind, kind)


# --------------------------------------------------------------------------------------
# The list
# --------------------------------------------------------------------------------------


def campaigns_page(filters: Filters) -> Page:
    page = Page(title="Campaigns", section="campaigns")
    by_parent = parent_selectors.totals_by_parent_channel(filters)
    known = selectors.parents() if by_parent else {}
    page.context["has_data"] = bool(by_parent) or selectors.has_events()

    rows: list[dict[str, Any]] = []
    for (kind, parent_id), by_channel in by_parent.items():
        detail = known.get((kind, parent_id), {})
        rates = rates_for(by_channel)
        channels = sorted(by_channel)
        rows.append(
            {
                "kind": kind,
                "kind_label": kind_label(kind),
                "parent_id": parent_id,
                "name": detail.get("label") or "",
                "label": parent_label(kind, parent_id, detail.get("label") or ""),
                "short": f"{kind_label(kind)} {parent_id}",
                "url": parent_url(filters, kind, parent_id),
                "channels": channels,
                "channel_labels": ", ".join(channel_label(c) for c in channels),
                "sent": unique(by_channel, "sent"),
                # None ("—") when no channel of the parent has a delivered step.
                "delivered": (
                    unique(by_channel, "delivered")
                    if any(channel_has(c, "delivered") for c in by_channel)
                    else None
                ),
                **rates,
            }
        )
    rows.sort(key=lambda row: (-row["sent"], row["kind"], row["parent_id"]))
    for row in rows:
        row["sent_text"] = number(row["sent"])
        row["delivered_text"] = number(row["delivered"])
        row["rate_cells"] = rate_cells(row)
    page.context["parent_rows"] = rows
    page.context["rate_headers"] = [
        (SHORT_RATE_LABELS[key], RATE_BY_KEY[key].label) for key in TABLE_RATES
    ]
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind_label"]] = kinds.get(row["kind_label"], 0) + 1
    page.context["kind_counts"] = sorted(kinds.items())
    page.add_dataset(
        Dataset(
            "campaigns",
            ["kind", "id", "label", "channels", "sent", "delivered", *TABLE_RATES],
            [
                (
                    row["kind"],
                    row["parent_id"],
                    row["name"],
                    " ".join(row["channels"]),
                    row["sent"],
                    row["delivered"],
                    *(row[key] for key in TABLE_RATES),
                )
                for row in rows
            ],
        )
    )
    top = [row for row in rows if row["sent"]][:TOP_PARENTS]
    page.add_chart(
        Chart(
            "comparison",
            f"Top {len(top)} by sent" if len(top) > 1 else "Sent",
            parent_comparison_figure(top),
            "campaigns",
            note="Bars: messages sent; markers: open and click rates. Click a bar to open it.",
        )
    )
    return page


# --------------------------------------------------------------------------------------
# One campaign (or broadcast, newsletter, transactional message)
# --------------------------------------------------------------------------------------


def _action_totals(row: dict[str, Any]) -> dict[str, Totals]:
    """An action's reach as totals rates_for can read (unique deliveries per metric)."""
    return {
        row["channel"]: {
            metric: MetricTotal(deliveries=row[metric])
            for metric in ("sent", "delivered", "opened", "clicked", "converted", "bounced")
            if row.get(metric)
        }
    }


def campaign_page(filters: Filters, kind: str, parent_id: int) -> Page:
    if kind not in ParentKind.LABELS or not kind:
        raise Http404("no such kind of message")
    detail = selectors.parent_detail(kind, parent_id)
    if detail is None:
        raise Http404("never seen")
    scoped = replace(filters, parent_kind=kind, parent_id=parent_id)
    page = Page(title=parent_label(kind, parent_id, detail["label"]), section="campaigns")
    # One scan gives the series and the totals (see selectors.series_and_totals).
    points, current = selectors.series_and_totals(scoped)
    previous = selectors.totals_by_channel(scoped.previous())
    channels = set(detail["channels"]) | set(current)
    page.context.update(
        {
            "hide_parent_filter": True,
            "parent": detail,
            "kind_label": kind_label(kind),
            "parent_id": parent_id,
            "parent_name": detail["label"],
            "channel_labels": ", ".join(channel_label(c) for c in sorted(channels)),
            "has_data": bool(current),
            "tiles": kpi_tiles(current, previous, channels),
            "campaigns_url": reverse("dashboard:campaigns") + filters.query(parent=None),
            "channels_without_delivered": sorted(
                channel_label(c) for c in channels if c in NO_DELIVERED_STEP
            ),
            "totals": {
                "opens": number(raw(current, "opened")),
                "clicks": number(raw(current, "clicked")),
            },
        }
    )

    # Funnel per channel (drill-downs keep the parent).
    # Channels with the most steps first: the chart's step order follows the first channel.
    channel_funnels = sorted(funnels(scoped, current), key=lambda f: -len(f["steps"]))
    page.add_dataset(
        Dataset(
            "funnel",
            ["channel", "step", "unique_deliveries"],
            [(f["channel"], s["metric"], s["count"]) for f in channel_funnels for s in f["steps"]],
        )
    )
    page.add_chart(
        Chart(
            "funnel",
            "Funnel (share of sent)",
            funnel_figure(channel_funnels),
            "funnel",
            note="Click a step to list its deliveries.",
        )
    )

    # Over time.
    page.add_dataset(
        Dataset(
            "series",
            ["interval_start", "metric", "unique_deliveries", "events", "human_deliveries"],
            [
                (p.start.isoformat(), p.metric, p.deliveries, p.events, p.human_deliveries)
                for p in points
            ],
        )
    )
    page.add_chart(
        Chart(
            "series",
            "Over time",
            series_figure(points, metrics=SERIES_METRICS),
            "series",
            note="Unique deliveries per metric in each interval; the CSV adds every event.",
        )
    )

    # Per action (the per-action counts, on the page's date basis).
    actions = []
    for row in selectors.totals_by_action(scoped):
        rates = rates_for(_action_totals(row))
        action = row["action_id"]
        actions.append(
            {
                **row,
                "label": f"Action {action}" if action is not None else "No action",
                "axis_label": f"{action if action is not None else '—'} · "
                f"{channel_label(row['channel'])}",
                "channel_label": channel_label(row["channel"]),
                # "—" for a step the channel never reports (in-app has no delivered).
                "counts": [
                    {"raw": row[m], "text": number(row[m])}
                    if channel_has(row["channel"], m)
                    else {"raw": "", "text": "—"}
                    for m in ACTION_METRICS
                ],
                "rates": rates,
                "rate_cells": rate_cells(rates, ("open_rate", "click_rate", "conversion_rate")),
            }
        )
    page.context["actions"] = actions
    page.add_dataset(
        Dataset(
            "actions",
            [
                "action_id",
                "channel",
                *ACTION_METRICS,
                "open_rate",
                "click_rate",
                "conversion_rate",
            ],
            [
                (
                    a["action_id"],
                    a["channel"],
                    *(a[m] for m in ACTION_METRICS),
                    a["rates"]["open_rate"],
                    a["rates"]["click_rate"],
                    a["rates"]["conversion_rate"],
                )
                for a in actions
            ],
        )
    )
    shown = actions[:12]
    page.add_chart(
        Chart(
            "actions",
            "By action",
            grouped_bars_figure(
                [a["axis_label"] for a in shown],
                {
                    metric.capitalize(): [a[metric] for a in shown]
                    for metric in ("sent", "delivered", "opened", "clicked", "converted")
                },
                colours=ACTION_COLOURS,
            ),
            "actions",
            note="Unique deliveries reaching each step in the period, by action.",
        )
    )

    # Most-clicked links.
    links = selectors.top_links(scoped)
    link_rows = []
    for link in links:
        clicks, machine = int(link["clicks"]), int(link["machine_clicks"])
        link_rows.append(
            {
                "link": link["link"],
                "clicks": clicks,
                "machine_clicks": machine,
                "human_clicks": clicks - machine,
                "clicks_text": number(clicks),
                "human_text": number(clicks - machine),
                "machine_text": number(machine),
            }
        )
    page.context["links"] = link_rows
    page.add_dataset(
        Dataset(
            "links",
            ["link", "clicks", "human_clicks", "machine_clicks"],
            [(r["link"], r["clicks"], r["human_clicks"], r["machine_clicks"]) for r in link_rows],
        )
    )

    messages = failure_message_rows(selectors.failure_messages(scoped, limit=5))
    page.context["failure_messages"] = messages
    page.add_dataset(
        Dataset(
            "failure_messages",
            ["channel", "metric", "message", "events"],
            [(m["channel"], m["metric"], m["message"], m["events"]) for m in messages],
        )
    )
    page.context["first_seen"] = detail["first_seen"]
    page.context["last_seen"] = detail["last_seen"]
    return page
