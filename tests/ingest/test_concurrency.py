"""Racing senders over real HTTP: overlapping batches (in opposite orders), identical single
events and redelivered webhooks, all at once against a live server. Each messageId ends as one
row, the answers' stored counts add up to the distinct messageIds, and nothing deadlocks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
import requests
from django.db.models import Count

from metrics_source.models import Event
from tests.conftest import basic_auth, cio_signature_headers

pytestmark = pytest.mark.django_db(transaction=True)

SENDERS = 6


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs in threads released at the same moment; return their results in order."""
    barrier = threading.Barrier(len(jobs))

    def start(job):
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(start, jobs))


def poster(url: str, headers: dict[str, str], bodies: list[bytes]) -> Callable[[], list]:
    def job():
        with requests.Session() as session:
            return [session.post(url, data=body, headers=headers, timeout=60) for body in bodies]

    return job


def tracking_headers(source) -> dict[str, str]:
    return {"Authorization": basic_auth(source.write_key), "Content-Type": "application/json"}


def call(message_id: str) -> dict:
    return {
        "type": "track",
        "event": "Email Delivered",
        "userId": "u",
        "messageId": message_id,
        "properties": {"delivery_id": f"d-{message_id}", "campaign_id": 7},
    }


def assert_one_row_each(expected_ids: set[str]):
    assert set(Event.objects.values_list("message_id", flat=True)) == expected_ids
    repeated = Event.objects.values("message_id").annotate(n=Count("id")).filter(n__gt=1)
    assert not repeated.exists()


def test_overlapping_batches_in_opposite_orders(live_server, source):
    rounds, per_round = 4, 400
    all_ids: set[str] = set()
    jobs_bodies: list[list[bytes]] = [[] for _ in range(SENDERS)]
    for r in range(rounds):
        ids = [f"r{r}-{i:04d}" for i in range(per_round)]
        all_ids.update(ids)
        for sender in range(SENDERS):
            # Windows that overlap, half of them sent in reverse order: without a common lock
            # order two inserts would each hold a key the other waits for.
            window = ids[sender * 20 : sender * 20 + 300]
            if sender % 2:
                window = window[::-1]
            jobs_bodies[sender].append(orjson.dumps({"batch": [call(i) for i in window]}))
    url = f"{live_server.url}/v1/batch"
    headers = tracking_headers(source)
    results = run_together([poster(url, headers, bodies) for bodies in jobs_bodies])

    stored_per_round = [0] * rounds
    for sender, responses in enumerate(results):
        for r, response in enumerate(responses):
            assert response.status_code == 200, (sender, r, response.text)
            answer = response.json()
            assert answer["stored"] + answer["duplicates"] == 300
            assert answer["rejected"] == []
            stored_per_round[r] += answer["stored"]
    # Every distinct messageId sent in a round was stored by exactly one of the racing requests.
    distinct_per_round = len({i for s in range(SENDERS) for i in range(s * 20, s * 20 + 300)})
    assert stored_per_round == [distinct_per_round] * rounds
    assert_one_row_each({i for i in all_ids if int(i.split("-")[1]) < distinct_per_round})


def test_identical_single_events_race_to_one_row(live_server, source):
    ids = [f"single-{i}" for i in range(12)]
    url = f"{live_server.url}/v1/track"
    headers = tracking_headers(source)
    jobs = []
    for sender in range(SENDERS):
        order = ids if sender % 2 == 0 else ids[::-1]
        jobs.append(poster(url, headers, [orjson.dumps(call(i)) for i in order]))
    results = run_together(jobs)

    stored = duplicates = 0
    for responses in results:
        for response in responses:
            assert response.status_code == 200, response.text
            stored += response.json()["stored"]
            duplicates += response.json()["duplicates"]
    assert stored == len(ids)
    assert duplicates == len(ids) * (SENDERS - 1)
    assert_one_row_each(set(ids))


def test_redelivered_webhook_racing_itself_is_stored_once(live_server, source):
    payload = orjson.dumps(
        {
            "event_id": "01HRACE0000000000000000000",
            "object_type": "email",
            "metric": "opened",
            "timestamp": 1717230000,
            "data": {
                "delivery_id": "d-race",
                "campaign_id": 3,
                "action_id": 4,
                "identifiers": {"id": "42", "email": "a@example.com"},
                "recipient": "a@example.com",
            },
        }
    )
    url = f"{live_server.url}/webhooks/customerio/{source.source.slug}"

    def deliver():
        headers = {
            "Content-Type": "application/json",
            **cio_signature_headers(source.secret, payload),
        }
        return requests.post(url, data=payload, headers=headers, timeout=60)

    responses = run_together([deliver] * SENDERS)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * (SENDERS - 1)
    assert_one_row_each({"01HRACE0000000000000000000"})
