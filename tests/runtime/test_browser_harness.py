"""The browser-test harness (tests/browser.py) on the pages that exist: a logged-in user sees
the home page with a clean console, and errors a page makes are caught and fail its test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from metrics_source.models import Source
from tests.browser import (
    ARTIFACTS,
    VIEWPORT,
    allow_console_error,
    assert_clean,
    problems_of,
    screenshot,
    watch,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def test_logged_in_home_renders_with_a_clean_console(logged_in_page, live_server, make_source):
    page = logged_in_page
    # The dashboard's pages are being built: this checks the harness, not their content.
    response = page.goto("/")
    assert response is not None and response.status == 200
    assert page.url == f"{live_server.url}/"
    assert_clean(page)

    # The test's own database calls work between browser calls, and the server sees them.
    make_source("made between browser calls")
    page.goto("/admin/metrics_source/source/")
    assert page.get_by_role("link", name="made between browser calls").is_visible()
    page.goto("/")
    assert_clean(page)

    path = screenshot(page, "home")

    assert path == ARTIFACTS / "home.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    # IHDR holds the width: the full 1366 px viewport, not an empty or clipped capture.
    assert int.from_bytes(data[16:20], "big") == VIEWPORT["width"]


def test_anonymous_visitor_is_sent_to_a_clean_admin_login(page, live_server):
    page.goto("/")
    assert page.url.startswith(f"{live_server.url}/admin/login/?next=/")
    assert page.locator("#id_username").is_visible()
    assert_clean(page)
    assert screenshot(page, "admin-login").read_bytes().startswith(PNG_SIGNATURE)


@pytest.fixture
def watched_page(browser: Browser):
    """A page outside the page fixture, so the errors it collects do not fail this test."""
    context = browser.new_context()
    page = context.new_page()
    yield page, watch(page)
    context.close()


def test_console_errors_and_uncaught_exceptions_are_collected(watched_page):
    page, problems = watched_page
    page.goto(
        "data:text/html,<script>console.error('deliberate console error');"
        "console.warn('only a warning')</script>"
        "<script>throw new Error('deliberate uncaught error')</script>"
    )
    page.wait_for_load_state("load")

    assert [e.split(" (")[0] for e in problems.console_errors] == ["deliberate console error"]
    assert len(problems.page_errors) == 1
    assert "deliberate uncaught error" in problems.page_errors[0]
    with pytest.raises(AssertionError, match="deliberate console error") as raised:
        assert_clean(page)
    assert "page error: " in str(raised.value)


def test_a_csp_violation_is_reported(watched_page):
    page, problems = watched_page

    def serve_page_with_an_inline_script(route: Route) -> None:
        route.fulfill(
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'self'"},
            body="<p>policy test</p><script>document.title = 'ran'</script>",
        )

    # A routed URL: the browser never resolves it, no server is involved.
    page.route("http://csp.harness.invalid/", serve_page_with_an_inline_script)
    page.goto("http://csp.harness.invalid/")
    page.wait_for_load_state("load")

    assert page.title() != "ran"
    assert any("Content Security Policy" in e for e in problems.console_errors), problems
    with pytest.raises(AssertionError, match="Content Security Policy"):
        assert_clean(page)

    allow_console_error(page, r"Content Security Policy")
    assert_clean(page)
    assert problems_of(page) is problems


def test_a_page_test_with_a_console_error_fails(tmp_path):
    """The page fixture turns a console error into the test's failure, with a screenshot."""
    (tmp_path / "test_harness_self_check.py").write_text(
        textwrap.dedent(
            """
            pytest_plugins = ["tests.browser"]

            def test_page_logs_an_error(page):
                page.goto("data:text/html,<script>console.error('seen by the harness')</script>")
                page.wait_for_load_state("load")
            """
        )
    )
    shots = tmp_path / "screenshots"
    # Only this plugin: the inner run needs neither Django nor the project's settings.
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "SCREENSHOT_DIR": str(shots),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed" in output and "error" not in output.splitlines()[-1], output
    assert "console error: seen by the harness" in output, output
    failure_shot = shots / "failed" / "test_harness_self_check.py--test_page_logs_an_error.png"
    assert failure_shot.read_bytes().startswith(PNG_SIGNATURE)


def test_tests_without_the_browser_keep_djangos_async_check(db):
    """After browser tests in the same process, others see no running loop (Django would
    refuse their queries) and no DJANGO_ALLOW_ASYNC_UNSAFE (its check stays on)."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    assert not Source.objects.exists()
