"""Which metrics a delivery summary records the first time of, and how each is counted.

Customer.io's reports count a metric once per delivery (opened five times is one open), and
split opens and clicks into human and machine ones (``prefetched`` / ``proxied`` opens,
``machine`` clicks). A delivery therefore keeps the first time it reached each metric, plus
the first human open and click.
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics_source.ingest.catalog import Metric


@dataclass(frozen=True, slots=True)
class FirstTime:
    column: str
    metric: Metric
    # True for the first *human* open/click: counted as human_deliveries of its metric.
    human: bool = False


# Every metric a message delivery can reach (subscription changes have no delivery).
FIRST_TIMES: tuple[FirstTime, ...] = (
    *(
        FirstTime(f"{metric.value}_at", metric)
        for metric in Metric
        if metric not in (Metric.SUBSCRIBED, Metric.PREFERENCES_CHANGED)
    ),
    FirstTime("human_opened_at", Metric.OPENED, human=True),
    FirstTime("human_clicked_at", Metric.CLICKED, human=True),
)

# Failures whose reason (failure_message) is counted for the "why did it fail" tables.
FAILURE_METRICS: tuple[Metric, ...] = (
    Metric.BOUNCED,
    Metric.SUPPRESSED,
    Metric.FAILED,
    Metric.UNDELIVERABLE,
    Metric.DEFERRED,
    Metric.SPAMMED,
)


class ParentKind:
    """What sent a delivery. Each delivery has exactly one; '' when an event names none."""

    CAMPAIGN = "campaign"
    BROADCAST = "broadcast"
    NEWSLETTER = "newsletter"
    TRANSACTIONAL = "transactional"
    NONE = ""

    # Event column -> kind, in the order they are looked at.
    COLUMNS: tuple[tuple[str, str], ...] = (
        ("campaign_id", CAMPAIGN),
        ("broadcast_id", BROADCAST),
        ("newsletter_id", NEWSLETTER),
        ("transactional_message_id", TRANSACTIONAL),
    )
    LABELS: dict[str, str] = {
        CAMPAIGN: "Campaign",
        BROADCAST: "Broadcast",
        NEWSLETTER: "Newsletter",
        TRANSACTIONAL: "Transactional",
        NONE: "None",
    }


class Basis:
    """The time a count is filed under."""

    EVENT = 0  # when the event happened
    SENT = 1  # when its delivery was sent (send-date cohort, as Customer.io reports)
