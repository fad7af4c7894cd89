"""Browser tests of the dashboard: headless Debian chromium driven by Playwright's sync API.

The browser is the distribution's ``/usr/bin/chromium`` (``scripts/ensure-chromium`` installs
it); Playwright never downloads one. Without it the browser tests are skipped, or fail when
``REQUIRE_BROWSER=1`` (CI sets it, so a missing browser cannot pass unnoticed).

Use it from a test module as a pytest plugin::

    pytest_plugins = ["tests.browser"]

    from tests.browser import assert_clean, screenshot

    def test_overview_renders(logged_in_page, live_server):
        page = logged_in_page
        page.goto("/")                      # relative to live_server.url
        page.locator(".js-plotly-plot").first.wait_for()
        assert_clean(page)                  # optional: the fixture checks again at the end
        screenshot(page, "overview")        # test-artifacts/screenshots/overview.png

Fixtures:

- ``browser`` (one per session, so one per pytest-xdist worker): chromium with a fresh
  temporary profile, closed at the end of the session.
- ``page``: a new context per test (viewport 1366x900) with its console errors, uncaught page
  errors and failed requests collected. When the test requests ``live_server`` too, relative
  URLs resolve against it. The test fails if any console error or page error occurred;
  Content-Security-Policy violations are console errors, so they fail it as well. Failed
  requests (connections refused, aborted loads) are listed in that report but do not fail a
  test alone: a navigation aborts the loads of the page it leaves. An HTTP error status for a
  resource shows up as a console error ("Failed to load resource ...") and does fail it.
- ``logged_in_page``: ``page`` after logging in as pytest-django's ``admin_user`` through
  /admin/login/, on the live server; the test runs with ``transactional_db`` (the server
  thread sees only committed rows), so create data in the test, then load the page.

Helpers: ``assert_clean(page)`` raises with everything collected so far;
``allow_console_error(page, pattern)`` lets a test that provokes an error on purpose (a 404
page) declare it; ``screenshot(page, name)`` saves a full-page PNG as a test artifact. A test
that fails leaves a screenshot in test-artifacts/screenshots/failed/.
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep a test browser from talking to anything but the page under test.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 900}
# Playwright's 30 s default turns a missing element into a long wait; pages answer in far less.
TIMEOUT_MS = 15_000
# SCREENSHOT_DIR moves them (the harness's own self-check keeps its deliberate failure apart).
ARTIFACTS = Path(
    os.environ.get("SCREENSHOT_DIR")
    or Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
)

_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
_loop_key = pytest.StashKey[asyncio.AbstractEventLoop]()
_page_key = pytest.StashKey[Page]()
# How many of the page's failures the call-phase hook already reported as the test's own.
_reported_key = pytest.StashKey[int]()


@dataclass
class BrowserProblems:
    """What went wrong in one page while a test drove it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Console errors (CSP violations among them) not allowed, and every page error."""
        unexpected = [
            message
            for message in self.console_errors
            if not any(pattern.search(message) for pattern in self.allowed)
        ]
        return [f"console error: {m}" for m in unexpected] + [
            f"page error: {m}" for m in self.page_errors
        ]

    def report(self) -> str:
        lines = self.failures()
        lines += [f"failed request (context): {r}" for r in self.failed_requests]
        return "\n".join(lines)


# Pages map to their collectors without attributes bolted onto Playwright's objects.
_problems: weakref.WeakKeyDictionary[Page, BrowserProblems] = weakref.WeakKeyDictionary()


def watch(page: Page) -> BrowserProblems:
    """Start collecting the page's console errors, page errors and failed requests."""
    problems = BrowserProblems()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            url = message.location.get("url") if message.location else ""
            problems.console_errors.append(f"{message.text} ({url})" if url else message.text)

    def on_request_failed(request: Request) -> None:
        problems.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on("requestfailed", on_request_failed)
    _problems[page] = problems
    return problems


def problems_of(page: Page) -> BrowserProblems:
    try:
        return _problems[page]
    except KeyError:
        raise LookupError("this page is not watched: use the page fixture or watch(page)") from None


def assert_clean(page: Page) -> None:
    """Fail if the page logged a console error (a CSP violation is one) or threw."""
    problems = problems_of(page)
    if problems.failures():
        raise AssertionError(f"the browser reported errors on {page.url}:\n{problems.report()}")


def allow_console_error(page: Page, pattern: str) -> None:
    """Accept console errors matching this regular expression (an error provoked on purpose)."""
    problems_of(page).allowed.append(re.compile(pattern))


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png and return its path."""
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9._/-]+', '-', name).strip('/')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser(pytestconfig: pytest.Config) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: run scripts/ensure-chromium"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    playwright = sync_playwright().start()
    loop = asyncio.get_running_loop()
    try:
        # launch() gives the browser a fresh temporary profile (user data dir) and removes it
        # on close. One per session, so each pytest-xdist worker drives its own browser.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except BaseException:
        playwright.stop()
        raise
    finally:
        asyncio._set_running_loop(None)
    pytestconfig.stash[_loop_key] = loop
    yield chromium
    with _playwright_loop_running(loop):
        chromium.close()
        playwright.stop()


@pytest.fixture(autouse=True)
def _browser_test_marks_the_playwright_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Marks Playwright's event loop as running for the tests that use the browser, only.

    Playwright's sync API runs its asyncio loop in a greenlet of the main thread and, between
    calls, leaves it marked as this thread's running loop; its next call needs that mark.
    Django then takes the test's own database calls for calls from async code: it refuses
    them (SynchronousOnlyOperation) and keeps their connections apart from the thread's
    usual ones. The loop is in fact suspended while the test runs, so a browser test runs
    with DJANGO_ALLOW_ASYNC_UNSAFE, and its connections are closed when the mark comes and
    goes so that none is left open beside the other set (a leaked one keeps the test
    database from being dropped). Every other test in the process (an xdist worker runs both
    kinds) sees no loop and keeps Django's check. Browser tests need ``transactional_db``,
    which ``live_server`` brings: a connection closed here ends no test transaction.
    """
    if "browser" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("browser")
    with _playwright_loop_running(request.config.stash[_loop_key]):
        yield


@contextmanager
def _playwright_loop_running(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    previous = os.environ.get(_ASYNC_UNSAFE)
    _close_django_connections()
    os.environ[_ASYNC_UNSAFE] = "true"
    asyncio._set_running_loop(loop)
    try:
        yield
    finally:
        _close_django_connections()
        asyncio._set_running_loop(None)
        if previous is None:
            del os.environ[_ASYNC_UNSAFE]
        else:
            os.environ[_ASYNC_UNSAFE] = previous


def _close_django_connections() -> None:
    from django.conf import settings

    if settings.configured:  # the harness also drives pages that need no Django at all
        from django.db import connections

        connections.close_all()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    base_url = None
    if "live_server" in request.fixturenames:
        base_url = request.getfixturevalue("live_server").url
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    problems = watch(new_page)
    request.node.stash[_page_key] = new_page
    yield new_page
    try:
        # The call-phase hook below reports errors as the test's failure; this catches those
        # that came later, or all of them where this module is not loaded as a plugin.
        if len(problems.failures()) > request.node.stash.get(_reported_key, 0):
            pytest.fail(f"the browser reported errors on {new_page.url}:\n{problems.report()}")
    finally:
        context.close()


@pytest.fixture
def logged_in_page(page: Page, live_server, admin_user) -> Page:
    """``page`` logged in through the admin's login form as pytest-django's admin_user."""
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", admin_user.get_username())
    page.fill("#id_password", "password")  # pytest-django's admin_user password
    with page.expect_navigation():
        page.click("input[type=submit]")
    if "/admin/login/" in page.url:
        errors = page.locator(".errornote, .errorlist").all_inner_texts()
        pytest.fail(f"admin login failed: {errors}")
    return page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Report the browser's errors as the test's own failure (not a teardown error), and keep
    a screenshot of a page whose test failed."""
    page = item.stash.get(_page_key, None)
    try:
        result = yield
    except BaseException as failure:
        if page is not None:
            problems = problems_of(page)
            item.stash[_reported_key] = len(problems.failures())
            if problems.report():
                failure.add_note(f"the browser also reported:\n{problems.report()}")
            _screenshot_failure(page, item)
        raise
    if page is not None:
        item.stash[_reported_key] = len(problems_of(page).failures())
        try:
            assert_clean(page)
        except AssertionError:
            _screenshot_failure(page, item)
            raise
    return result


def _screenshot_failure(page: Page, item: pytest.Item) -> None:
    # A page that is closed or crashed must not hide the test's real failure.
    with suppress(Exception):
        screenshot(page, f"failed/{item.nodeid.replace('::', '--')}")
