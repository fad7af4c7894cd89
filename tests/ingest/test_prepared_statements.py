"""The hot-path statements are prepared once per connection, not parsed and planned on every
request: Django turns psycopg's preparation off by default, and ``execute(prepare=True)`` is then
silently ignored."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import basic_auth
from tests.ingest.test_api_tracking import post, track

pytestmark = pytest.mark.django_db


def prepared_statements() -> dict[str, int]:
    """Each statement prepared on this connection, with how many times it has run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def event_inserts() -> dict[str, int]:
    return {s: n for s, n in prepared_statements().items() if "INTO metrics_source_event" in s}


def test_ingest_statements_are_prepared_on_the_connection(client, source):
    auth = basic_auth(source.write_key)
    assert post(client, "/v1/track", track(message_id="p-1"), auth=auth).status_code == 200
    batch = {"batch": [track(message_id="p-2"), track(message_id="p-3")]}
    assert post(client, "/v1/batch", batch, auth=auth).status_code == 200
    inserts = event_inserts()
    assert len(inserts) == 2, inserts  # one row (VALUES) and many rows (unnest)
    assert sum("unnest(" in statement for statement in inserts) == 1
    # The write-key lookup too (this key is new, so it was not served from the cache).
    assert any("FROM metrics_source_source" in s for s in prepared_statements())


def test_a_repeated_request_reuses_the_prepared_statement(client, source):
    auth = basic_auth(source.write_key)
    assert post(client, "/v1/track", track(message_id="r-0"), auth=auth).status_code == 200
    before = event_inserts()
    for n in range(1, 4):
        assert post(client, "/v1/track", track(message_id=f"r-{n}"), auth=auth).status_code == 200
    after = event_inserts()
    assert after.keys() == before.keys()
    assert sum(after.values()) == sum(before.values()) + 3


def test_django_orm_queries_stay_unprepared(client, source):
    # Only the statements that ask for it are prepared: the ORM binds on the client, so a
    # connection pooler sees plain queries for everything else.
    for _ in range(10):  # more than psycopg's default threshold for automatic preparation
        list(type(source.source).objects.filter(pk=source.source.pk))
    assert not [s for s in prepared_statements() if "metrics_source_source" in s]
