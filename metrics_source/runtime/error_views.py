"""Django's error handlers where API clients need JSON (named in the root URLconf)."""

from __future__ import annotations

import orjson
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.views import defaults

# Paths whose clients are programs: their errors are JSON, never Django's HTML pages.
API_PREFIXES = ("/v1/", "/webhooks/")
# A Host header is the sender's text: echo only enough of it to recognise.
_HOST_SHOWN = 100


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 400 that Django raised before any endpoint ran: a Host not in ``ALLOWED_HOSTS`` (the
    usual first failure when an SDK is pointed at a new name or address), or a request
    Django found suspicious. API paths answer JSON naming the problem, pages Django's page.
    (Django calls this with DEBUG off; with it on, ``api_host_refused`` gives API clients the
    same answer in place of the debug page.)"""
    if not request.path.startswith(API_PREFIXES):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = request.META.get("HTTP_HOST", "")
        if len(host) > _HOST_SHOWN:
            host = host[:_HOST_SHOWN] + "..."
        message = (
            f"this server does not answer to the host {host!r}: the operator adds it to "
            "ALLOWED_HOSTS"
        )
    else:
        message = "the request was refused as malformed or unsafe"
    return HttpResponse(
        orjson.dumps({"error": message}), status=400, content_type="application/json"
    )


def api_host_refused(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """``response``, or the JSON 400 above when it is Django's page (the debug page, with
    DEBUG on) for an API request to a Host outside ``ALLOWED_HOSTS``."""
    if (
        response.status_code != 400
        or not request.path.startswith(API_PREFIXES)
        or response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    try:
        request.get_host()
    except DisallowedHost as refused:
        return bad_request(request, refused)
    return response
