"""Rotating a write key with a grace period in a real browser, at desktop and phone width:
the operator picks the grace in the action bar, runs the action, is shown the new key once and
until when the old one works, and the source's page says the same."""

from __future__ import annotations

import pytest

from tests.browser import assert_clean, screenshot

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_rotating_with_a_grace_period(logged_in_page, live_server, make_source, width):
    created = make_source("Grace workspace")
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/admin/metrics_source/source/")
    page.check(f"input[name=_selected_action][value='{created.source.pk}']")
    page.select_option("select[name=action]", "rotate_write_key")
    page.select_option("select[name=grace_hours]", "72")
    with page.expect_navigation():
        page.click("button[name=index]")
    messages = page.locator(".messagelist").inner_text()
    assert "Copy it now" in messages
    assert f"msk_…{created.write_key[-4:]}) stays valid until" in messages
    screenshot(page, f"source-rotated-with-grace-{width}")

    page.goto(f"{live_server.url}/admin/metrics_source/source/{created.source.pk}/change/")
    assert "still accepted until" in page.locator("fieldset").nth(1).inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"source-previous-key-{width}")
    assert_clean(page)
