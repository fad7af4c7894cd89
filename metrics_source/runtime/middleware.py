"""Middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse

from metrics_source.runtime.error_views import (
    API_PREFIXES,
    DATABASE_ERRORS,
    api_host_refused,
    database_unavailable,
)

logger = logging.getLogger(__name__)

_REASONS = {404: "no such endpoint", 405: "method not allowed"}


class JsonApiErrorsMiddleware:
    """API clients get JSON for an unknown path, a wrong method or a Host outside
    ALLOWED_HOSTS, like every other API error, instead of Django's HTML pages. And a view
    that fails because the database is unavailable (the admin's session lookup, a dashboard
    query) answers 503 with Retry-After, not a 500: with DEBUG on too, where Django would show
    its traceback page instead of calling ``handler500``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = api_host_refused(request, self.get_response(request))
        reason = _REASONS.get(response.status_code)
        if (
            reason is None
            or not request.path.startswith(API_PREFIXES)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        if response.status_code == 405 and response.has_header("Allow"):
            reason += f" (allowed: {response['Allow']})"
        json_response = HttpResponse(
            orjson.dumps({"error": f"{reason}: {request.method} {request.path}"}),
            status=response.status_code,
            content_type="application/json",
        )
        if response.has_header("Allow"):
            json_response["Allow"] = response["Allow"]
        return json_response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            # The class only: the message names the server. Django logs the 503 itself.
            logger.warning("database unavailable: %s", type(exception).__name__)
            return database_unavailable(request)
        return None


class SessionMiddleware(sessions.SessionMiddleware):
    """Django's, but nothing is saved or renewed on a 5xx answer. Django skips the save on
    those too, yet first asks the session for its expiry (sessions are renewed on every
    request, SESSION_SAVE_EVERY_REQUEST), which loads it from the database: when that
    database is what failed, the 503 page would turn into a 500 on its way out."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code >= 500:
            return response
        return super().process_response(request, response)


# Scripts only from our own static files, on every page (the dashboard, the admin, the API
# docs). Plotly and Swagger UI set element styles, hence 'unsafe-inline' for styles (never
# for scripts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Every page (an HTML answer) that has no Content-Security-Policy of its own gets the
    site's; JSON and CSV answers are not run by a browser and go without."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
