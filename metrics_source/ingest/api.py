"""The HTTP API: one NinjaAPI with the tracking, webhook and system routers mounted, and the
answers for the errors every endpoint shares.

Each endpoint is thin (authenticate -> read the body -> one service call -> response) and lives
in ``endpoints``, by concern. Errors are answered here, once: an ``AuthError`` or ``BodyError``
with its status and message, and a database that cannot be reached with 503 and
``Retry-After``, so the sender retries.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.operation import Operation
from ninja.renderers import BaseRenderer

from metrics_source.ingest.auth import AuthError
from metrics_source.ingest.endpoints import system, tracking, webhooks
from metrics_source.ingest.request_body import BodyError


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson.dumps(data)


class MetricsSourceAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # The endpoint function's name, as clients generated from the document call it: ninja's
        # default prefixes the module path, so moving a function would rename the operation.
        return operation.view_func.__name__


api = MetricsSourceAPI(
    title="metrics-source",
    version="1",
    description=(
        "Receives Customer.io message-activity events from reporting webhooks and "
        "Segment-compatible SDKs, stores each once, and forwards them."
    ),
    renderer=OrjsonRenderer(),
    docs_url="api/docs",
    openapi_url="api/openapi.json",
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return api.create_response(request, {"error": message}, status=status)


@api.exception_handler(AuthError)
def _auth_error(request: HttpRequest, exc: AuthError) -> HttpResponse:
    return _error(request, exc.status, exc.message)


@api.exception_handler(BodyError)
def _body_error(request: HttpRequest, exc: BodyError) -> HttpResponse:
    return _error(request, exc.status, exc.message)


def _database_unavailable(request: HttpRequest, exc: object) -> HttpResponse:
    # Never 2xx without a commit: the sender must retry.
    response = _error(request, 503, "the database is unavailable; nothing was stored, retry later")
    response["Retry-After"] = "5"
    return response


api.add_exception_handler(OperationalError, _database_unavailable)
api.add_exception_handler(InterfaceError, _database_unavailable)


api.add_router("/v1", tracking.router)
api.add_router("/webhooks", webhooks.router)
api.add_router("", system.router)
