"""Model fields."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from metrics_source.ingest import exact_json
from metrics_source.runtime import encryption


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


class _DecryptingAttribute(DeferredAttribute):
    """Reads give the secret: a value straight from the database (whether the ORM or a
    hand-written query loaded it, as the hot paths do with ``Model.from_db``) is decrypted on
    first read and kept decrypted on the instance."""

    # A data descriptor (it has __set__), so reads come here even once the instance holds
    # the value, which is how a model's __init__ and from_db store it.
    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is not None and isinstance(value, str) and encryption.is_encrypted(value):
            value = encryption.decrypt(value)
            instance.__dict__[self.field.attname] = value
        return value


class EncryptedTextField(models.TextField):
    """A secret stored encrypted (metrics_source/runtime/encryption.py), read as plain text.
    Only emptiness can be queried: the stored form of a value differs at every save."""

    descriptor_class = _DecryptingAttribute

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encryption.encrypt(value) if isinstance(value, str) else value
