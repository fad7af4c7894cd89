"""The "no access" and lockout pages in a real browser, at desktop and phone width: a Viewer
signs in through the form, is shown the aggregate pages, and gets the explanation (never the
data) on a page with people."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from tests.browser import allow_console_error, assert_clean, screenshot
from tests.dashboard.test_channel import ingest_sample

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "viewer-password-0123"


def sign_in(page, live_server, name: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", name)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_a_viewer_sees_the_overview_and_is_told_why_not_the_deliveries(page, live_server, width):
    ingest_sample()
    viewer = User.objects.create_user("vera", password=PASSWORD, is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live_server, "vera", PASSWORD)
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator("nav a", has_text="Deliveries").count() == 0
    allow_console_error(page, "403")
    page.goto(f"{live_server.url}/deliveries/d1/")
    assert page.locator("h1").inner_text() == "No access to this page"
    assert "personal data" in page.locator("main").inner_text()
    assert "cool.person@example.com" not in page.content()
    assert page.locator("main").bounding_box()["width"] <= width
    screenshot(page, f"no-access-{width}")
    assert_clean(page)


def test_the_lockout_page(page, live_server, settings):
    User.objects.create_user("vera", password=PASSWORD, is_staff=True)
    allow_console_error(page, "429")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(page, live_server, "vera", f"wrong-{attempt}")
    assert page.locator("h1").inner_text() == "Too many failed sign-ins"
    page.set_viewport_size({"width": 390, "height": 700})
    screenshot(page, "locked-out-390")


@pytest.mark.parametrize(
    "path",
    ["/admin/metrics_source/source/", "/admin/metrics_source/event/", "/api/docs"],
)
def test_admin_and_api_docs_run_under_the_policy(logged_in_page, live_server, make_source, path):
    """No inline script or style the policy would block: any violation is a console error,
    which fails the test (tests/browser.py)."""
    make_source("Policy")
    ingest_sample()
    page = logged_in_page
    page.goto(f"{live_server.url}{path}")
    if path == "/api/docs":
        page.locator(".swagger-ui .opblock").first.wait_for()
    else:
        page.locator("#result_list").wait_for()
    if path.endswith("/source/"):
        # The Copy button's script is a static file now: it still works.
        assert page.locator(".ms-copy-button").count() >= 1
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.ms-copy')).userSelect")
            == "all"
        )
    assert_clean(page)
