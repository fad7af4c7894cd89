"""Importing names in a real browser, at desktop and phone width: the list's "Import from
CSV" link, the form, the report of what was imported."""

from __future__ import annotations

import pytest

from tests.browser import assert_clean, screenshot

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_importing_names(logged_in_page, live_server, tmp_path, width):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/admin/metrics_source/messagename/")
    with page.expect_navigation():
        page.click("text=Import from CSV")
    names = tmp_path / "names.csv"
    names.write_text("kind,id,name\ncampaign,101,Welcome series\naction,1011,Day 0\nx,1,y\n")
    page.set_input_files("input[type=file]", str(names))
    screenshot(page, f"names-import-form-{width}")
    with page.expect_navigation():
        page.click("input[type=submit]")
    messages = page.locator(".messagelist").inner_text()
    assert "2 new" in messages and "line 4: unknown kind" in messages
    assert page.locator("#result_list tbody tr").count() == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"names-imported-{width}")
    assert_clean(page)
