"""Middleware."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from django.http import HttpRequest, HttpResponse

from metrics_source.runtime.error_views import API_PREFIXES, api_host_refused

_REASONS = {404: "no such endpoint", 405: "method not allowed"}


class JsonApiErrorsMiddleware:
    """API clients get JSON for an unknown path, a wrong method or a Host outside
    ALLOWED_HOSTS, like every other API error, instead of Django's HTML pages."""

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
