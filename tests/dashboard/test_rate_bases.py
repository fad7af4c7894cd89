"""Every rate on the overview is counted over the channels that can report it, checked against
SQL written by hand on the demo workspace: an SMS cannot be opened, an in-app message cannot
bounce, so neither may sit in those rates' denominators (they did: 22.1 % shown for an open
rate that was 28.1 % over the channels that open)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

pytestmark = pytest.mark.django_db

# From the reference's semantic event list: which channels have which event.
OPENS = ["email", "push", "in_app", "whatsapp"]
BOUNCES = ["email", "push", "sms", "whatsapp"]
REPORTS_DELIVERY = ["email", "push", "sms", "whatsapp"]
NO_DELIVERY_STEP = ["in_app", "webhook", "slack"]
MESSAGES = REPORTS_DELIVERY + NO_DELIVERY_STEP


def reached(metric: str, channels: list[str]) -> int:
    """Deliveries of the channels that reached the metric, each once."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT delivery_id) FROM metrics_source_event"
            " WHERE metric = %s AND channel = ANY(%s) AND delivery_id IS NOT NULL",
            [metric, channels],
        )
        return cursor.fetchone()[0]


def delivered_base(channels: list[str]) -> int:
    """Delivered, with sent standing in for channels that have no delivered step."""
    return reached("delivered", [c for c in channels if c in REPORTS_DELIVERY]) + reached(
        "sent", [c for c in channels if c in NO_DELIVERY_STEP]
    )


def shown(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@pytest.fixture
def demo_workspace() -> None:
    call_command("demo_data", events=6_000, days=20, seed=5, no_progress=True, stdout=StringIO())


def test_overview_rates_leave_out_channels_that_cannot_report_them(
    client, admin_user, demo_workspace
) -> None:
    # The demo workspace has messages that can be neither opened nor bounced: without them
    # this test could not tell the old base from the new one.
    assert reached("sent", ["sms", "webhook", "slack"]) > 0
    assert reached("sent", ["in_app"]) > 0

    client.force_login(admin_user)
    response = client.get(reverse("dashboard:overview"), {"period": "90d"})
    tiles = {tile.label: tile for tile in response.context["tiles"]}

    open_rate = reached("opened", OPENS) / delivered_base(OPENS)
    assert open_rate != pytest.approx(reached("opened", OPENS) / delivered_base(MESSAGES))
    assert tiles["Open rate"].value == shown(open_rate)
    assert "over Email, Push, In-App" in tiles["Open rate"].detail

    bounce_rate = reached("bounced", BOUNCES) / reached("sent", BOUNCES)
    assert tiles["Bounce rate"].value == shown(bounce_rate)

    delivery_rate = reached("delivered", REPORTS_DELIVERY) / reached("sent", REPORTS_DELIVERY)
    assert tiles["Delivery rate"].value == shown(delivery_rate)
    assert tiles["Delivered"].detail.startswith("over Email, Push, SMS")

    click_rate = reached("clicked", MESSAGES) / delivered_base(MESSAGES)
    assert tiles["Click rate"].value == shown(click_rate)
    click_to_open = reached("clicked", OPENS) / reached("opened", OPENS)
    assert tiles["Click-to-open"].value == shown(click_to_open)
