"""The ingest endpoints, served without Django's middleware chain, URL resolver and ninja's
dispatch.

``POST /v1/track``, ``POST /v1/batch`` and ``POST /webhooks/customerio/<slug>`` carry nearly all
the traffic. On the 2-core bench machine the layers around the endpoint cost more than the
endpoint itself: about 1.8 ms of CPU per single-event request through the full stack against
0.85 ms straight to the same function. So the WSGI handler sends exactly these requests to the
endpoint functions in ``endpoints``, and does here what the skipped layers do for them:

* ``ALLOWED_HOSTS`` (CommonMiddleware asks ``request.get_host()``);
* the tracking API's write-key auth and the exception handlers, as ninja runs them
  (``api.on_exception``);
* the response headers of SecurityMiddleware, CommonMiddleware (Content-Length) and
  XFrameOptionsMiddleware, by their own ``process_response``;
* the 4xx/5xx log line and the ``request_started``/``request_finished`` signals (those come
  from the WSGI handler itself, which is kept).

The rest of the chain (sessions, CSRF, messages, static files, the admin's user) does nothing
for a CSRF-exempt JSON endpoint that reads no cookie. ``STANDS_IN_FOR`` lists the chain this
was written against, each middleware with what stands in for it; the handler refuses to start
when ``settings.MIDDLEWARE`` is another, so a middleware added later cannot silently miss the
hot endpoints. Every other request, and these when ``SECURE_SSL_REDIRECT`` is on, takes the
full stack. ``tests/ingest/test_fast_path.py`` checks that both give the same status, body and
headers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_urlconf
from django.utils.log import log_response

from metrics_source.ingest import api
from metrics_source.ingest.endpoints import tracking, webhooks
from metrics_source.runtime.error_views import api_host_refused

Endpoint = Callable[[HttpRequest], HttpResponse]

# settings.MIDDLEWARE as the fast path knows it, in its order (which is the order the response
# headers are applied in), each with what the hot endpoints get in its place.
STANDS_IN_FOR = {
    "django.middleware.security.SecurityMiddleware": (
        "its response headers, by its process_response; with SECURE_SSL_REDIRECT on, every "
        "request takes the full stack"
    ),
    "metrics_source.runtime.middleware.ContentSecurityPolicyMiddleware": (
        "nothing: it sets its header on HTML pages only, and these answer JSON"
    ),
    "metrics_source.runtime.middleware.JsonApiErrorsMiddleware": (
        "api_host_refused for a Host outside ALLOWED_HOSTS; the endpoints answer JSON already"
    ),
    "whitenoise.middleware.WhiteNoiseMiddleware": "nothing: it serves static files, not these",
    "metrics_source.runtime.middleware.SessionMiddleware": "nothing: no cookie is read",
    "django.middleware.common.CommonMiddleware": (
        "request.get_host() (ALLOWED_HOSTS) and Content-Length, by its process_response"
    ),
    "django.middleware.csrf.CsrfViewMiddleware": "nothing: the API is CSRF-exempt",
    "django.contrib.auth.middleware.AuthenticationMiddleware": (
        "nothing: a write key or a webhook signature authenticates, never a session"
    ),
    "django.contrib.messages.middleware.MessageMiddleware": "nothing: no page is rendered",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": (
        "its response header, by its process_response"
    ),
    "axes.middleware.AxesMiddleware": (
        "nothing: it answers a locked-out sign-in, and these endpoints sign no one in"
    ),
}


def check_middleware() -> None:
    """ImproperlyConfigured, naming the middleware, unless ``settings.MIDDLEWARE`` is the chain
    the fast path stands in for (``STANDS_IN_FOR``), in the same order."""
    configured = list(settings.MIDDLEWARE)
    known = list(STANDS_IN_FOR)
    if configured == known:
        return
    hot = "POST /v1/track, /v1/batch and /webhooks/customerio/<slug>"
    added = [path for path in configured if path not in STANDS_IN_FOR]
    if added:
        raise ImproperlyConfigured(
            f"settings.MIDDLEWARE has {', '.join(added)}, which the ingest fast path "
            f"(metrics_source/ingest/fast_path.py) does not stand in for: {hot} would skip it. "
            "Do what it must do for them in the endpoint or the fast path, then add it to "
            "STANDS_IN_FOR there."
        )
    removed = [path for path in known if path not in configured]
    if removed:
        raise ImproperlyConfigured(
            f"settings.MIDDLEWARE no longer has {', '.join(removed)}, which the ingest fast "
            f"path (metrics_source/ingest/fast_path.py) still stands in for on {hot}. Remove it "
            "from STANDS_IN_FOR there, with what the fast path does in its place."
        )
    raise ImproperlyConfigured(
        "settings.MIDDLEWARE has the middleware the ingest fast path stands in for in another "
        f"order (the order its response headers are applied in): {', '.join(configured)}; "
        "metrics_source/ingest/fast_path.py was written for "
        f"{', '.join(known)}. Update STANDS_IN_FOR and the response side there to match."
    )


def _with_write_key(endpoint: Endpoint) -> Endpoint:
    """The endpoint behind the tracking router's auth, which ninja runs before the view."""

    def authenticated(request: HttpRequest) -> HttpResponse:
        request.auth = tracking.write_key_auth(request)  # type: ignore[attr-defined]
        return endpoint(request)

    return authenticated


_TRACKING: dict[str, Endpoint] = {
    "/v1/track": _with_write_key(tracking.track),
    "/v1/batch": _with_write_key(tracking.batch),
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
            endpoint = partial(webhooks.customerio_webhook, slug=slug)
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

    def load_middleware(self, is_async: bool = False) -> None:
        # At start-up (a WSGI handler loads its chain once, when it is made): a chain the fast
        # path was not written for stops the server here rather than skipping a middleware.
        check_middleware()
        super().load_middleware(is_async)  # type: ignore[misc]

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
