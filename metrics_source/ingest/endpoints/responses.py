"""The answers the hot endpoints build themselves."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse


def json_response(status: int, body: dict[str, Any]) -> HttpResponse:
    # Hot-path answers skip ninja's response validation: the bodies are built here from
    # plain data, and the declared schemas still document them.
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
