"""The ingest endpoints, served without Django's middleware chain, URL resolver and ninja's
dispatch.

``POST /v1/track``, ``POST /v1/batch`` and ``POST /webhooks/customerio/<slug>`` carry nearly all
the traffic. On the 2-core bench machine the layers around the endpoint cost more than the
endpoint itself: about 1.8 ms of CPU per single-event request through the full stack against
0.85 ms straight to the same function. So the WSGI handler sends exactly these requests to the
endpoint functions in ``api``, and does here what the skipped layers do for them:

* ``ALLOWED_HOSTS`` (CommonMiddleware asks ``request.get_host()``);
* the tracking API's write-key auth and the exception handlers, as ninja runs them
  (``api.on_exception``);
* the response headers of SecurityMiddleware, CommonMiddleware (Content-Length) and
  XFrameOptionsMiddleware, by their own ``process_response``;
* the 4xx/5xx log line and the ``request_started``/``request_finished`` signals (those come
  from the WSGI handler itself, which is kept).

The rest of the chain (sessions, CSRF, messages, static files, the admin's user) does nothing
for a CSRF-exempt JSON endpoint that reads no cookie. Every other request, and these when
``SECURE_SSL_REDIRECT`` is on, takes the full stack. ``tests/ingest/test_fast_path.py`` checks that
both give the same status, body and headers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import cast

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_urlconf
from django.utils.log import log_response

from metrics_source.ingest import api
from metrics_source.runtime.error_views import api_host_refused

Endpoint = Callable[[HttpRequest], HttpResponse]


def _with_write_key(endpoint: Endpoint) -> Endpoint:
    """The endpoint behind the tracking router's auth, which ninja runs before the view."""

    def authenticated(request: HttpRequest) -> HttpResponse:
        request.auth = api.write_key_auth(request)  # type: ignore[attr-defined]
        return endpoint(request)

    return authenticated


_TRACKING: dict[str, Endpoint] = {
    "/v1/track": _with_write_key(api.track),
    "/v1/batch": _with_write_key(api.batch),
}
_WEBHOOK_PREFIX = "/webhooks/customerio/"


def _never_called(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only process_response of these middlewares is used")


# The response side of the stack's middlewares that add headers, innermost first, as the
# chain applies them.
_RESPONSE_MIDDLEWARE = [
    middleware(_never_called)
    for middleware in (XFrameOptionsMiddleware, CommonMiddleware, SecurityMiddleware)
]


def fast_endpoint(request: HttpRequest) -> Endpoint | None:
    """The endpoint this request goes straight to, or None for the full stack."""
    if request.method != "POST" or settings.SECURE_SSL_REDIRECT:
        return None
    path = request.path_info
    endpoint = _TRACKING.get(path)
    if endpoint is None and path.startswith(_WEBHOOK_PREFIX):
        slug = path[len(_WEBHOOK_PREFIX) :]
        # What ninja's {slug} matches: one non-empty path segment.
        if slug and "/" not in slug:
            endpoint = partial(api.customerio_webhook, slug=slug)
    return endpoint


def _endpoint_response(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    try:
        request.get_host()  # DisallowedHost for a Host not in ALLOWED_HOSTS, as the stack does
        try:
            return endpoint(request)
        except Exception as error:
            # ninja's own path: our handlers (AuthError, BodyError, database down) answer,
            # anything else is raised again.
            return api.api.on_exception(request, error)
    except Exception as error:
        # What Django does (400, 500, logged), with JSON for a refused Host in DEBUG too.
        return api_host_refused(request, response_for_exception(request, error))


def fast_response(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    response = _endpoint_response(request, endpoint)
    for middleware in _RESPONSE_MIDDLEWARE:
        # The endpoints and Django's error responses are all HttpResponse (never streaming).
        response = cast(HttpResponse, middleware.process_response(request, response))
    return response


class FastPathMixin:
    """For a Django handler class: ``get_response`` serves the hot endpoints directly."""

    def get_response(self, request: HttpRequest) -> HttpResponse:
        endpoint = fast_endpoint(request)
        if endpoint is None:
            return super().get_response(request)  # type: ignore[misc]
        # What BaseHandler.get_response does around its middleware chain.
        set_urlconf(settings.ROOT_URLCONF)
        response = fast_response(request, endpoint)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        if response.status_code >= 400:
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
            )
        return response


class MetricsSourceWSGIHandler(FastPathMixin, WSGIHandler):
    """The project's WSGI application (``metrics_source.wsgi``)."""
