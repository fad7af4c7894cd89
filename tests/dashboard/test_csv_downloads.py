"""Every CSV download is safe to open in a spreadsheet: event text that starts like a formula
(= + - @, tab, CR, LF) is written with a leading single quote; numbers stay numbers, negative
ones included."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from dashboard.pages.csv_cells import FORMULA_STARTS, spreadsheet_cell
from metrics_source.summaries.rollup import summaries_catch_up
from tests.dashboard.test_deliveries import at, call, ingest

pytestmark = pytest.mark.django_db

DELIVERY = '=HYPERLINK("https://evil.example","d")'
PERSON = "+cmd|' /C calc'!A0"
PLANTED = {
    "delivery": DELIVERY,
    "person": PERSON,
    "recipient": "@SUM(1+1)*cmd|' /C calc'!A0",
    "subject": "-2+3+cmd|' /C calc'!A0",
    "failure": "\t=1+1",
    "link": "=1+1",
    "message": "-1+@message",
}


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (-3, -3),  # a negative number is a number, not a formula
        (-0.25, -0.25),
        (Decimal("-1.5"), Decimal("-1.5")),
        (True, "True"),
        ("-3", "'-3"),  # text from an event that looks like a number is still text
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("@A1", "'@A1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("a=1", "a=1"),
        ("2026-12-03T12:00:00+00:00", "2026-12-03T12:00:00+00:00"),
    ],
)
def test_spreadsheet_cell(value, cell):
    assert spreadsheet_cell(value) == cell


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def planted(db):
    props = {"campaign_id": 7, "recipient": PLANTED["recipient"], "subject": PLANTED["subject"]}
    ingest(
        call("Email Sent", PLANTED["message"], at(1), DELIVERY, PERSON, **props),
        call("Email Bounced", "b-1", at(1, 1), DELIVERY, PERSON,
             failure_message=PLANTED["failure"], **props),
        call("Email Link Clicked", "c-1", at(1, 2), DELIVERY, PERSON,
             href=PLANTED["link"], **props),
    )  # fmt: skip
    summaries_catch_up()


PAGES = [
    ("/", {}),
    ("/channels/", {}),
    ("/channels/email/", {}),
    ("/campaigns/", {}),
    ("/campaigns/campaign/7/", {}),
    ("/deliveries/", {}),
    ("/deliveries/", {"q": PERSON}),
    ("/deliveries/", {"reached": "sent", "channel": "email"}),
    (f"/deliveries/{DELIVERY}/", {}),
    (f"/people/{PERSON}/", {}),
]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_every_csv_download_escapes_planted_formulas(admin, planted):
    written: set[str] = set()
    downloads = 0
    for url, params in PAGES:
        page = admin.get(url, params)
        assert page.status_code == 200, url
        for name in page.context["page"].datasets:
            response = admin.get(url, {**params, "download": name})
            assert response.status_code == 200
            assert response["Content-Type"].startswith("text/csv")
            downloads += 1
            body = b"".join(response.streaming_content) if response.streaming else response.content
            for row in csv.reader(io.StringIO(body.decode(), newline="")):
                for cell in row:
                    assert not cell.startswith(FORMULA_STARTS) or is_number(cell), (url, name)
                    written.add(cell)
    assert downloads >= 20  # every table of every page
    # Each planted value reached some download, quoted.
    for field, value in PLANTED.items():
        assert "'" + value in written, field
