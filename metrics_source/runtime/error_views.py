"""Django's error handlers where API clients need JSON (named in the root URLconf), and the
answer while the database is unavailable."""

from __future__ import annotations

import sys

import orjson
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

# Paths whose clients are programs: their errors are JSON, never Django's HTML pages.
API_PREFIXES = ("/v1/", "/webhooks/")
# A Host header is the sender's text: echo only enough of it to recognise.
_HOST_SHOWN = 100
# What a lost or refused database connection raises (a session or user lookup included).
DATABASE_ERRORS = (OperationalError, InterfaceError)
# Seconds a client is asked to wait: the embedded PostgreSQL is back within a few.
RETRY_AFTER_SECONDS = 5


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


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 404: JSON naming the path for API clients, the site's page (with its navigation)
    for people."""
    if request.path.startswith(API_PREFIXES):
        return HttpResponse(
            orjson.dumps({"error": f"no such endpoint: {request.method} {request.path[:200]}"}),
            status=404,
            content_type="application/json",
        )
    return defaults.page_not_found(request, exception)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: a page for people, JSON for API clients. Nothing of the error is
    shown (its text names the server, and may hold the database URL)."""
    if request.path.startswith(API_PREFIXES):
        response = HttpResponse(
            orjson.dumps({"error": "the database is unavailable; nothing was stored, retry later"}),
            status=503,
            content_type="application/json",
        )
    else:
        # Rendered without the request: context processors would look up the user, in the
        # database that is down.
        page = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, or the 503 above when the error is the database being unavailable.
    Django calls this (DEBUG off) for an exception no view handled, also one raised outside
    views (a middleware saving the session); the exception is the one being handled."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable(request)
    return defaults.server_error(request)
