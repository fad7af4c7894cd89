"""The plausibility window for event timestamps: an event dated too far back or ahead is
refused by name, and costs the valid events of its batch nothing; the years at the very ends
of the calendar never give a 500."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from metrics_source.models import Event
from tests.conftest import basic_auth, cio_signature_headers, make_client
from tests.payloads import track_call

pytestmark = pytest.mark.django_db


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def batch(client, write_key: str, calls: list[dict]):
    return client.post(
        "/v1/batch",
        data=orjson.dumps({"batch": calls}),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )


@pytest.mark.parametrize(
    ("timestamp", "words"),
    [
        ("0001-01-01T00:00:00Z", "days in the past"),
        ("1970-01-01T00:00:00Z", "days in the past"),
        ("9999-12-31T23:59:59Z", "in the future"),
        ("in 3 days", "in the future"),
    ],
)
def test_implausible_timestamps_are_refused_and_the_rest_is_stored(source, timestamp, words):
    if timestamp == "in 3 days":  # computed here: collection must be the same in every worker
        timestamp = at(datetime.now(UTC) + timedelta(days=3))
    client = make_client("full stack")
    good = track_call("Email Opened", message_id="window-good", timestamp=at(datetime.now(UTC)))
    bad = track_call("Email Opened", message_id="window-bad", timestamp=timestamp)
    response = batch(client, source.write_key, [good, bad])
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["stored"] == 1
    (rejected,) = answer["rejected"]
    assert rejected["messageId"] == "window-bad"
    assert "timestamp" in rejected["error"] and words in rejected["error"]
    assert list(Event.objects.values_list("message_id", flat=True)) == ["window-good"]


def test_an_old_event_inside_the_window_is_stored(source, settings):
    settings.EVENT_MAX_AGE_DAYS = 10_000
    client = make_client("full stack")
    old = track_call("Email Opened", message_id="window-old", timestamp="2001-02-03T04:05:06Z")
    assert batch(client, source.write_key, [old]).json()["stored"] == 1


def test_the_window_is_configurable(source, settings):
    settings.EVENT_MAX_AGE_DAYS = 7
    client = make_client("full stack")
    week_old = at(datetime.now(UTC) - timedelta(days=8))
    call = track_call("Email Opened", message_id="window-week", timestamp=week_old)
    (rejected,) = batch(client, source.write_key, [call]).json()["rejected"]
    assert "more than 7 days in the past (EVENT_MAX_AGE_DAYS)" in rejected["error"]


@pytest.mark.parametrize("timestamp", [1, 253402300799, "in 10 days"])
def test_a_webhook_out_of_the_window_is_400_naming_the_timestamp(make_source, timestamp):
    if timestamp == "in 10 days":
        timestamp = int(time.time()) + 10 * 86400
    created = make_source("window-hook", secret="window-secret")
    body = orjson.dumps(
        {
            "metric": "sent",
            "event_id": f"01WINDOW{timestamp}",
            "object_type": "email",
            "timestamp": timestamp,
            "data": {"delivery_id": "d-window", "identifiers": {"id": "42"}},
        }
    )
    response = make_client("full stack").post(
        f"/webhooks/customerio/{created.source.slug}",
        data=body,
        content_type="application/json",
        **{
            f"HTTP_{name.upper().replace('-', '_')}": value
            for name, value in cio_signature_headers("window-secret", body).items()
        },
    )
    assert response.status_code == 400, response.content
    assert "timestamp" in response.json()["error"]
    assert not Event.objects.exists()
