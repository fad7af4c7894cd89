"""No dashboard page or CSV download is kept by a browser or a proxy: they hold personal data
(emails, person ids, each delivery's events), so every response says ``no-store``."""

from __future__ import annotations

import pytest
from django.urls import reverse

from metrics_source.summaries.rollup import summaries_catch_up
from tests.dashboard.test_deliveries import at, call, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def sample(db):
    props = {"campaign_id": 7, "recipient": "ann@example.com", "href": "https://example.com"}
    ingest(
        call("Email Sent", "n-1", at(1), "d-1", "p-1", **props),
        call("Email Link Clicked", "n-2", at(1, 1), "d-1", "p-1", **props),
    )
    summaries_catch_up()


# Every dashboard URL (the names in dashboard/urls.py), with the arguments each needs.
URLS = {
    "overview": [],
    "channels": [],
    "channel": ["email"],
    "campaigns": [],
    "campaign": ["campaign", 7],
    "deliveries": [],
    "delivery": ["d-1"],
    "person": ["p-1"],
}


def test_every_dashboard_url_is_covered():
    from dashboard.urls import urlpatterns

    assert {pattern.name for pattern in urlpatterns} == set(URLS)


@pytest.mark.parametrize("name", URLS)
def test_pages_and_their_csvs_are_never_stored(admin, sample, name):
    url = reverse(f"dashboard:{name}", args=URLS[name])
    page = admin.get(url, {"q": "p-1"} if name == "deliveries" else {})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"], url
    datasets = page.context["page"].datasets
    assert datasets
    for dataset in datasets:
        download = admin.get(url, {"download": dataset})
        assert download["Content-Type"].startswith("text/csv")
        assert "no-store" in download["Cache-Control"], (url, dataset)
