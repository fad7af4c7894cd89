"""Plain psycopg access to Django's connection, for the few statements on the hot path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def hot_path_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor on Django's connection (same transaction, same error translation).

    Django's own cursors bind parameters on the client and never prepare statements; for
    statements run on every request, server-side binding plus ``execute(..., prepare=True)``
    saves quoting every array element in Python and re-planning the statement each time.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
