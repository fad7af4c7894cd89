"""/healthz against the real PostgreSQL and Redis, and against a broker that is not there."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_healthy_when_database_and_broker_answer(client, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_503_naming_the_broker_when_it_is_down(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://:broker-pa55word@127.0.0.1:{closed_port}/0"
    response = client.get("/healthz")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["broker"].startswith("down")
    # The error names the failing part, never its address or credentials.
    assert "broker-pa55word" not in response.content.decode()
    assert str(closed_port) not in response.content.decode()


def test_healthz_needs_no_authentication_and_only_reads(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert client.get("/healthz", headers={"Authorization": "Bearer nothing"}).status_code == 200
