"""Model fields."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import models

from metrics_source.ingest import exact_json


class JSONTextField(models.TextField):
    """JSON kept as plain text in the database and read back as Python data.

    For the event as received: it is written on every insert and rarely read, so PostgreSQL
    stores the text without building a jsonb value (a quarter of the insert's cost). Cast it
    (``raw::jsonb``) to query inside it; an event that arrived with a NUL character holds it
    escaped (``\\u0000``), which that cast refuses, and Python reads back whole.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else exact_json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return exact_json.loads(value)
            except orjson.JSONDecodeError:
                return value
        return value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else exact_json.dumps(value).decode()
