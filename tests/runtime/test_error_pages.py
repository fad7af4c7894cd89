"""The 404 and 500 pages are the site's own, with its navigation (not Django's bare "Not
Found"); API clients get JSON for both."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from metrics_source.runtime.error_views import server_error

pytestmark = pytest.mark.django_db


def test_a_missing_page_has_the_navigation(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "<h1>Page not found</h1>" in body and "/no-such-page/" in body
    assert 'href="/channels/"' in body and "dashboard.css" in body  # the site's look


def test_an_unknown_api_path_answers_json(client):
    response = client.post("/v1/nope", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": "no such endpoint: POST /v1/nope"}


def test_the_500_page_has_the_navigation_and_needs_no_request_context():
    request = RequestFactory().get("/")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = server_error(request)
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and 'href="/channels/"' in body
    assert "boom" not in body
