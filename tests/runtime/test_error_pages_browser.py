"""The 404 page in a real browser, at desktop and phone width: the site's navigation and
look, nothing wider than the screen."""

from __future__ import annotations

import pytest

from tests.browser import allow_console_error, assert_clean, screenshot

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1440, 390], ids=["desktop", "phone"])
def test_the_404_page(logged_in_page, live_server, width):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 900})
    allow_console_error(page, "404")
    page.goto(f"{live_server.url}/campaigns/campaign/987654/")
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.locator("header.top nav a", has_text="Campaigns").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"not-found-{width}")
    assert_clean(page)
