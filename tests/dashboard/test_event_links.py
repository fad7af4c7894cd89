"""Links and labels that come from events: a clicked link becomes an ``<a href>`` only when it
is an http(s) URL, every other href on the pages is a path on this site, and event text in a
chart's hover labels is escaped (Plotly renders a subset of HTML there)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from dashboard.links import http_link
from metrics_source.summaries.rollup import summaries_catch_up
from tests.dashboard.test_deliveries import at, call, ingest

pytestmark = pytest.mark.django_db

PLANTED = [
    "javascript:alert(1)",
    " javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "javascript&#58;alert(1)",
    "javascript&colon;alert(1)",
    "&#106;avascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "https:\\\\evil.example",
    "http:///no-host",
    "//evil.example/path",
]
SAFE = ["https://example.com/a?b=1&c=2", "HTTP://EXAMPLE.COM/", "http://example.com:8080/x"]
EVIL_SUBJECT = "<a href='javascript:alert(1)'>Win</a><b>big</b>"


@pytest.mark.parametrize("text", PLANTED)
def test_anything_but_an_http_url_is_no_link(text):
    assert http_link(text) is None


@pytest.mark.parametrize("text", SAFE)
def test_http_urls_are_links(text):
    assert http_link(text) == text


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def planted(db):
    """Campaign 7 with a click on each planted link and two on a safe one; its first subject
    (the campaign's label) is HTML; a person id that reads as a javascript: URL."""
    person, props = "javascript:alert(1)", {"campaign_id": 7}
    ingest(
        call("Email Sent", "s-1", at(1), "d-1", person, subject=EVIL_SUBJECT, **props),
        *[
            call("Email Link Clicked", f"c-{n}", at(1, 5), "d-1", person, href=link, **props)
            for n, link in enumerate([*PLANTED, SAFE[0], SAFE[0]])
        ],
    )
    summaries_catch_up()


class Attributes(HTMLParser):
    """Every href and src on a page, as the browser reads them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value or "" for name, value in attrs if name in ("href", "src")]


def hrefs(html: str) -> list[str]:
    parser = Attributes()
    parser.feed(html)
    return parser.urls


def on_this_site(href: str) -> bool:
    return href.startswith(("/", "?", "#")) and not href.startswith(("//", "/\\"))


def test_campaign_page_links_only_http_urls(admin, planted):
    response = admin.get(reverse("dashboard:campaign", args=["campaign", 7]))
    assert response.status_code == 200
    html = response.content.decode()
    links = {row["link"]: row["href"] for row in response.context["links"]}
    assert links[SAFE[0]] == SAFE[0]
    assert all(links[text] is None for text in PLANTED if text in links)
    assert 'href="https://example.com/a?b=1&amp;c=2"' in html
    assert "javascript:alert(1)" in html  # shown, as text
    assert all(on_this_site(url) or url == SAFE[0] for url in hrefs(html))


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/channels/email/",
        "/campaigns/",
        "/campaigns/campaign/7/",
        "/deliveries/?q=d-1",
        "/deliveries/d-1/",
        "/people/javascript:alert(1)/",
    ],
)
def test_every_other_href_stays_on_this_site(admin, planted, url):
    response = admin.get(url)
    assert response.status_code == 200
    for href in hrefs(response.content.decode()):
        assert on_this_site(href) or href == SAFE[0], href


def test_event_text_in_chart_hover_labels_is_escaped(admin, planted):
    response = admin.get(reverse("dashboard:campaigns"))
    figure = response.context["page"].charts["comparison"].figure
    labels = [text for trace in figure["data"] for text in trace.get("text") or ()]
    assert labels and all("<" not in text for text in labels)
    assert any("&lt;a href=&#x27;javascript:alert(1)&#x27;&gt;Win" in text for text in labels)
