"""Shared fixtures. Every test talks to real PostgreSQL (pytest-django's test database)."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import pytest
from django.test import Client
from django.test.client import ClientHandler

from metrics_source.ingest.fast_path import FastPathMixin
from metrics_source.ingest.sources import source_create
from metrics_source.models import Source

# The browser fixtures (Debian's chromium driven by Playwright) for the page tests.
pytest_plugins = ["tests.browser"]


@dataclass
class SourceWithKey:
    source: Source
    write_key: str
    secret: str


@pytest.fixture
def make_source(db):
    """Create a source; returns it with its one-time write key and webhook secret."""
    counter = iter(range(1_000_000))

    def factory(
        name: str | None = None, *, enabled: bool = True, secret: str = "cio-signing-secret"
    ) -> SourceWithKey:
        source, write_key = source_create(
            name=name or f"source-{next(counter)}", webhook_signing_secret=secret, enabled=enabled
        )
        return SourceWithKey(source, write_key, secret)

    return factory


@pytest.fixture
def source(make_source) -> SourceWithKey:
    return make_source("main")


def cio_signature_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict:
    """Headers as Customer.io signs a reporting webhook: hex HMAC-SHA256 of v0:<ts>:<body>."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"v0:%d:" % ts + body, hashlib.sha256).hexdigest()
    return {"X-CIO-Timestamp": str(ts), "X-CIO-Signature": digest}


def basic_auth(write_key: str) -> str:
    """``Authorization`` value as Segment-compatible SDKs send it: Basic base64(writeKey:)."""
    import base64

    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


class FastClientHandler(FastPathMixin, ClientHandler):
    """Django's test handler with the project's fast path, as metrics_source.wsgi has it."""


def make_client(route: str) -> Client:
    """A test client whose requests take the full Django stack, or the project's fast path for
    the ingest endpoints (what the WSGI application serves them with)."""
    client = Client()
    if route == "fast path":
        client.handler = FastClientHandler(enforce_csrf_checks=False)
    return client


@pytest.fixture(params=["full stack", "fast path"])
def both_routes_client(request) -> Client:
    """The test client, once per route an ingest request can take."""
    return make_client(request.param)
