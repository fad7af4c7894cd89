"""The dashboard in headless Chromium: every page loads with a clean console (no error, no
CSP violation), every chart renders and downloads as CSV, filters update the URL and the
charts, chart clicks drill down, and tables sort. A full-page screenshot of each page is
saved as a test artifact (test-artifacts/screenshots/dashboard-*.png).

The data is the demo workspace (3,000 events over 30 days) written through the real ingest
service and rollup, committed (the live server only sees committed rows), in each test.

One module on purpose (over 400 lines): every page checked here shares one browser and one live
server.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from metrics_source.demo import demo_calls
from metrics_source.ingest.service import events_ingest_calls
from metrics_source.models import Event
from metrics_source.summaries.models import DeliverySummary
from metrics_source.summaries.rollup import summaries_catch_up
from tests.browser import assert_clean, screenshot

# The batch limit of the ingest API; the demo stream hands some events over later than that.
CHUNK = 2_500
# Plotly draws after the page's load event; a chart gets "rendered" once newPlot resolves.
RENDER_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Demo:
    """Things of the demo workspace the pages are opened on."""

    campaign_url: str
    email: str
    delivery_id: str
    person_id: str


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """admin_user's password is hashed when made and again at login, in every test; the
    production hasher spends a second or more on each on purpose. The live server runs in
    this process, so it checks with the same hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(transactional_db) -> Demo:
    calls = demo_calls(events=3_000, days=30, seed=1)
    while chunk := list(islice(calls, CHUNK)):
        result = events_ingest_calls(source=None, calls=chunk)
        assert not result.rejected, result.rejected[:3]
    summaries_catch_up()

    summaries = DeliverySummary.objects
    busiest = (
        summaries.filter(parent_kind="campaign")
        .values("parent_id")
        .annotate(deliveries=Count("delivery_id"))
        .order_by("-deliveries", "parent_id")
        .first()
    )
    assert busiest is not None, "the demo data has no campaign"
    # An opened email with a person and an address: a timeline with several events.
    delivery = (
        summaries.filter(channel="email", opened_at__isnull=False)
        .exclude(person_id=None)
        .exclude(recipient=None)
        .order_by("-created_at", "delivery_id")
        .first()
    )
    assert delivery is not None, "the demo data has no opened email"
    return Demo(
        campaign_url=reverse("dashboard:campaign", args=["campaign", busiest["parent_id"]]),
        email=delivery.recipient,
        delivery_id=delivery.delivery_id,
        person_id=delivery.person_id,
    )


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None, url
    assert response.status == 200, f"{url} answered {response.status}"


def charts_rendered(page: Page, *, at_least: int = 1) -> Locator:
    """Wait until every figure of the page is drawn by dashboard.js (class ``rendered``, an
    SVG ``.main-svg`` inside); return them."""
    figures = page.locator("[data-figure]")
    count = figures.count()
    assert count >= at_least, f"{page.url}: {count} charts, expected at least {at_least}"
    for index in range(count):
        figure = figures.nth(index)
        expect(figure).to_have_class(re.compile(r"\brendered\b"), timeout=RENDER_TIMEOUT_MS)
        expect(figure.locator("svg.main-svg").first).to_be_attached()
    return figures


def chart_csvs_download(page: Page) -> None:
    """Each chart card's CSV link downloads a CSV with a header and at least one row."""
    links = page.locator("section.card:has([data-figure]) a[download]")
    for index in range(links.count()):
        link = links.nth(index)
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.failure() is None, download.failure()
        assert download.suggested_filename.endswith(".csv"), download.suggested_filename
        rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8"))))
        href = link.get_attribute("href")
        assert rows and all(rows[0]), f"{href}: no header row"
        assert len(rows) >= 2, f"{href}: a header and no rows"


def check_page(page: Page, name: str, *, charts: int = 1) -> None:
    """The page as it stands: charts drawn, CSVs downloadable, console clean; screenshot."""
    charts_rendered(page, at_least=charts)
    chart_csvs_download(page)
    assert_clean(page)
    screenshot(page, f"dashboard-{name}")


def figure_state(page: Page, selector: str) -> dict:
    """What Plotly drew in a chart: its x-axis range and the x values of each trace."""
    return page.locator(selector).evaluate(
        """node => ({
            range: node._fullLayout.xaxis.range.map(String),
            xs: node.data.map(trace => (trace.x || []).map(String)),
        })"""
    )


def click_biggest(page: Page, selector: str) -> None:
    """Click the centre of the biggest matching element (a bar), by coordinates: Plotly
    listens on its drag layer above the bars, not on the bars themselves."""
    bars = [(bar, bar.bounding_box()) for bar in page.locator(selector).all()]
    bars = [(bar, box) for bar, box in bars if box]
    assert bars, f"{page.url}: nothing matches {selector}"
    bar, box = max(bars, key=lambda item: item[1]["width"] * item[1]["height"])
    assert box["width"] * box["height"] > 4, f"{page.url}: the bars of {selector} are empty"
    # Mouse coordinates are the viewport's: bring the bar into it first.
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Plotly finds the clicked point from its hover state: hover first, as a user does.
    page.mouse.move(x, y)
    chart = page.locator(selector).first.locator("xpath=ancestor::div[@data-figure]")
    expect(chart.locator(".hoverlayer .hovertext").first).to_be_attached()
    page.mouse.click(x, y)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# ------------------------------------------------------------------------------------------
# Each page loads clean with its charts
# ------------------------------------------------------------------------------------------


def test_overview(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/")
    expect(page.locator(".tile").first).to_be_visible()
    charts_rendered(page, at_least=3)
    for card in ("#card-series", "#card-channels", "#card-funnel"):
        expect(page.locator(f"{card} [data-figure].rendered")).to_have_count(1)
    check_page(page, "overview", charts=3)


def test_channels(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/channels/")
    expect(page.locator("table.sortable tbody tr").first).to_be_visible()
    check_page(page, "channels")


def test_email_channel(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/channels/email/")
    expect(page.locator("h1")).to_contain_text("Email")
    check_page(page, "channel-email")


def test_campaigns(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/campaigns/")
    expect(page.locator("table.sortable tbody tr").first).to_be_visible()
    check_page(page, "campaigns")


def test_campaign_detail(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, demo.campaign_url)
    check_page(page, "campaign", charts=2)


def test_deliveries_search_by_email_opens_the_timeline(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/deliveries/")
    assert_clean(page)
    page.fill("input[name=q]", demo.email)
    with page.expect_navigation():
        page.press("input[name=q]", "Enter")
    assert query_of(page.url)["q"] == [demo.email]
    rows = page.locator("table tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator(f"table tbody a:has-text('{demo.delivery_id}')")).to_have_count(1)
    expect(rows.filter(has_text=demo.email).first).to_be_visible()
    check_page(page, "deliveries-search", charts=0)

    # The row's link opens the delivery's timeline.
    with page.expect_navigation():
        page.locator(f"table tbody a:has-text('{demo.delivery_id}')").click()
    assert urlsplit(page.url).path == reverse("dashboard:delivery", args=[demo.delivery_id])


def test_deliveries_funnel_step(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/deliveries/?channel=email&reached=opened")
    rows = page.locator("table.sortable tbody tr")
    expect(rows.first).to_be_visible()
    channels = set(page.locator("table.sortable tbody tr td:nth-child(2)").all_inner_texts())
    assert channels == {"Email"}, channels
    check_page(page, "deliveries-opened-email", charts=0)
    # More than a page of them: the pager goes on to the older ones.
    pager = page.locator("nav.pager")
    expect(pager).to_contain_text("1\u2013100 of")  # an en dash between the numbers
    with page.expect_navigation():
        pager.locator("a[rel=next]").click()
    assert query_of(page.url)["page"] == ["2"]
    expect(pager).to_contain_text("101\u2013")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    check_page(page, "deliveries-opened-email-page-2-phone", charts=0)


def test_delivery_timeline(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, reverse("dashboard:delivery", args=[demo.delivery_id]))
    expect(page.locator("h1")).to_contain_text(demo.delivery_id)
    expect(page.locator("#card-timeline [data-figure]")).to_have_count(1)
    check_page(page, "delivery")


def test_person(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, reverse("dashboard:person", args=[demo.person_id]))
    expect(page.locator("h1")).to_contain_text(demo.person_id)
    expect(page.locator(f"table tbody a:has-text('{demo.delivery_id}')")).to_have_count(1)
    check_page(page, "person")


# ------------------------------------------------------------------------------------------
# Interactions
# ------------------------------------------------------------------------------------------


def test_period_filter_updates_the_url_and_the_series_chart(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/")
    charts_rendered(page, at_least=3)
    label = page.locator("form.filters .tz")
    expect(label).to_contain_text("30 days")
    before = figure_state(page, "#card-series [data-figure]")

    with page.expect_navigation():
        page.select_option("select[name=period]", "7d")
    assert query_of(page.url)["period"] == ["7d"]
    expect(page.locator("select[name=period]")).to_have_value("7d")
    expect(label).to_contain_text("7 days")
    charts_rendered(page, at_least=3)
    after = figure_state(page, "#card-series [data-figure]")
    assert after["range"] != before["range"]
    assert after["xs"] != before["xs"]
    # A week of days draws fewer points than a month of them.
    assert max(map(len, after["xs"])) < max(map(len, before["xs"]))
    assert_clean(page)
    screenshot(page, "dashboard-overview-7d")


def test_channel_bar_click_opens_the_channel(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/")
    charts_rendered(page, at_least=3)
    with page.expect_navigation():
        click_biggest(page, "#card-channels .barlayer .point path")
    assert re.search(r"/channels/[a-z_]+/$", urlsplit(page.url).path), page.url
    charts_rendered(page)
    assert_clean(page)


def test_funnel_bar_click_lists_the_deliveries_of_that_step(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/")
    charts_rendered(page, at_least=3)
    with page.expect_navigation():
        click_biggest(page, "#card-funnel .barlayer .point path")
    assert urlsplit(page.url).path == "/deliveries/", page.url
    assert query_of(page.url).get("reached"), page.url
    expect(page.locator("table.sortable tbody tr").first).to_be_visible()
    assert_clean(page)


def test_campaigns_table_sorts_by_the_clicked_column(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/campaigns/")
    table = page.locator("table.sortable").first
    header = table.locator("thead th", has_text=re.compile(r"^Sent$"))
    titles = [title.strip() for title in table.locator("thead th").all_text_contents()]
    column = titles.index("Sent") + 1

    def sent_values() -> list[float]:
        cells = table.locator(f"tbody tr td:nth-child({column})")
        return [float(cell.get_attribute("data-value") or 0) for cell in cells.all()]

    values = sent_values()
    assert len(set(values)) > 1, "the campaigns all sent as much: nothing to sort"
    header.click()
    assert sent_values() == sorted(values)
    expect(header).to_have_attribute("data-order", "asc")
    header.click()
    assert sent_values() == sorted(values, reverse=True)
    expect(header).to_have_attribute("data-order", "desc")

    # A text column sorts too, in the browser's collation.
    table.locator("thead th", has_text=re.compile(r"^Name$")).click()
    assert table.evaluate(
        """table => {
            const names = Array.from(table.tBodies[0].rows, row =>
                row.cells[0].dataset.value || row.cells[0].textContent.trim());
            const sorted = names.slice().sort((a, b) => a.localeCompare(b));
            return names.length > 1 && names.every((name, i) => name === sorted[i]);
        }"""
    )
    assert_clean(page)


def test_custom_period_shows_dates_and_applies_them(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/")
    charts_rendered(page, at_least=3)
    dates = page.locator("form.filters .custom-dates")
    expect(dates).to_be_hidden()

    url = page.url
    page.select_option("select[name=period]", "custom")
    expect(dates).to_be_visible()
    assert page.url == url, "choosing custom dates must wait for the dates"

    today = timezone.localdate()  # the server's calendar (settings.TIME_ZONE)
    start, end = (today - timedelta(days=14)).isoformat(), today.isoformat()
    page.fill("input[name=from]", start)
    page.fill("input[name=to]", end)
    with page.expect_navigation():
        dates.get_by_role("button", name="Apply").click()
    query = query_of(page.url)
    assert (query["period"], query["from"], query["to"]) == (["custom"], [start], [end])
    assert re.search(rf"period=custom&from={start}&to={end}", page.url), page.url
    expect(page.locator("form.filters .custom-dates")).to_be_visible()
    expect(page.locator("input[name=from]")).to_have_value(start)
    expect(page.locator("form.filters .notice, p.notice")).to_have_count(0)
    charts_rendered(page, at_least=3)
    assert_clean(page)
    screenshot(page, "dashboard-overview-custom")


def test_overview_says_when_the_charts_are_behind(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    """Events stored ten minutes ago and never summarised (no worker): the notice names them."""
    late = list(islice(demo_calls(events=3_100, days=30, seed=2), 40))
    result = events_ingest_calls(source=None, calls=late)
    assert result.stored > 1, result
    Event.objects.filter(message_id__in=[call["messageId"] for call in late]).update(
        received_at=timezone.now() - timedelta(minutes=10)
    )
    page = logged_in_page
    open_page(page, reverse("dashboard:overview"))
    notice = page.locator("#summaries-backlog")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"The charts are behind: {result.stored} stored events")
    expect(notice).to_contain_text("10 minutes ago")
    check_page(page, "overview-behind")


def test_sorting_and_filters_work_from_the_keyboard(
    logged_in_page: Page, live_server, demo: Demo
) -> None:
    page = logged_in_page
    open_page(page, "/channels/")
    header = page.locator("table.sortable th").nth(1)
    button = header.locator("button.sort")
    button.focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "descending")
    assert page.locator("table.sortable th[aria-sort]").count() == 1

    # An arrow key on a closed menu moves the choice without reloading; Enter applies it.
    before = page.url
    interval = page.locator("select[name=interval]")
    interval.focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)
    assert page.url == before
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "interval=" in page.url
    assert_clean(page)


def test_each_chart_is_one_tab_stop(logged_in_page: Page, live_server, demo: Demo) -> None:
    page = logged_in_page
    open_page(page, "/")
    charts = charts_rendered(page, at_least=3)
    stops = page.evaluate(
        """() => Array.from(document.querySelectorAll("[data-figure].rendered"), node => ({
            self: node.tabIndex,
            inner: Array.from(node.querySelectorAll("a, button, input, [tabindex]"))
                .filter(el => el.tabIndex >= 0).length,
        }))"""
    )
    assert len(stops) == charts.count()
    assert all(stop["self"] == 0 and stop["inner"] == 0 for stop in stops), stops
    # Tabbing from the first chart lands on the next chart's card (its CSV link), not inside.
    first = page.locator("[data-figure].rendered").first
    first.focus()
    page.keyboard.press("Tab")
    inside = page.evaluate(
        "() => !!document.activeElement.closest('[data-figure]') && "
        "document.activeElement.matches('[data-figure] *')"
    )
    assert not inside


def test_on_a_touch_screen_no_toolbar_covers_a_chart(
    browser, live_server, admin_user, demo: Demo
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", admin_user.get_username())
        page.fill("#id_password", "password")
        with page.expect_navigation():
            page.click("input[type=submit]")
        page.goto(f"{live_server.url}/channels/email/")
        charts_rendered(page, at_least=1)
        page.locator("[data-figure].rendered").first.tap()
        assert page.locator(".modebar-container .modebar").count() == 0
        screenshot(page, "dashboard-channel-email-touch-390")
    finally:
        context.close()
