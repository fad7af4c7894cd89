"""The API documentation works offline: the page's scripts and styles are our own static files,
and the OpenAPI document lists the public endpoints."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import override_settings

pytestmark = pytest.mark.django_db

_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory):
    """Static files collected as a production deploy does it (hashed names, a manifest)."""
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


def _check_docs_page(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = _ASSET.findall(html)
    scripts = [url for url in assets if url.endswith(".js")]
    styles = [url for url in assets if url.endswith(".css")]
    assert scripts and styles, html
    for url in assets:
        parts = urlsplit(url)
        # Same origin: no scheme, no host (a CDN would need both, or a protocol-relative //).
        assert not parts.scheme and not parts.netloc, url
        assert parts.path.startswith("/static/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert len(body) > 100, url
    assert "cdn" not in html.lower()
    # The page points Swagger UI at our own OpenAPI document.
    assert "/api/openapi.json" in html


def test_docs_page_loads_its_assets_from_our_static_files(client, collected_static):
    _check_docs_page(client)


def test_docs_page_works_before_collectstatic(client, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path  # nothing collected
    _check_docs_page(client)


def test_openapi_document_lists_the_public_endpoints(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path in ("/v1/batch", "/v1/track", "/webhooks/customerio/{slug}", "/healthz"):
        assert path in paths, sorted(paths)
    for kind in ("identify", "page", "screen", "group", "alias"):
        # Each takes a JSON object (an empty body is refused), as track does.
        body = paths[f"/v1/{kind}"]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["type"] == "object"
    batch = paths["/v1/batch"]["post"]
    # The request body is described although the endpoint parses it by hand.
    schema = batch["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["batch"]["maxItems"] == 2500
    assert {"200", "400", "401", "403", "413", "415", "503"} <= set(batch["responses"])
    # The tracking API declares its write-key auth; the webhook has its own signature.
    assert batch.get("security")
    webhook = paths["/webhooks/customerio/{slug}"]["post"]
    assert {"200", "400", "401", "503"} <= set(webhook["responses"])
    assert "403" not in webhook["responses"]  # disabled answers as unknown: 401
    assert paths["/healthz"]["get"]["responses"].keys() >= {"200", "503"}


def test_the_documented_limits_read_as_the_enforced_ones(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    batch = paths["/v1/batch"]["post"]
    assert batch["summary"] == "Send up to 2,500 calls in one request (what SDKs use)"
    call = paths["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert call["properties"]["messageId"]["maxLength"] == 200
    assert [path for path in paths if path.count("/") == 2 and path.startswith("/v1/")] == [
        "/v1/batch", "/v1/track", "/v1/alias", "/v1/group", "/v1/identify", "/v1/page",
        "/v1/screen",
    ]  # fmt: skip


def test_each_operation_is_named_after_its_endpoint_alone(client):
    """Clients generated from the document name their methods after these, so they must not
    change when an endpoint moves to another module."""
    paths = client.get("/api/openapi.json").json()["paths"]
    names = {path: next(iter(item.values()))["operationId"] for path, item in paths.items()}
    assert names == {
        "/v1/batch": "batch", "/v1/track": "track", "/v1/alias": "alias", "/v1/group": "group",
        "/v1/identify": "identify", "/v1/page": "page", "/v1/screen": "screen",
        "/webhooks/customerio/{slug}": "customerio_webhook", "/healthz": "healthz",
        "/api/catalog": "event_catalog",
    }  # fmt: skip
