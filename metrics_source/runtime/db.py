"""Plain psycopg access to Django's connection, for the few statements on the hot path."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import OperationalError, connection


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


def _connection_lost() -> bool:
    # A connection that was open and is now gone; not a connect that failed (connection None):
    # trying that again at once would only double the wait while the server is down.
    raw = connection.connection
    return raw is not None and (raw.broken or raw.closed)


def hot_path_rows(sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one prepared statement in autocommit and return its rows.

    A web process keeps its connection between requests, and the ingest endpoints skip
    Django's per-request health check. So when PostgreSQL has restarted or ended the session
    in the meantime, this is where the loss shows. Outside a transaction, nothing else rode on
    that connection: reconnect and run the statement once more, rather than fail a request
    that a fresh connection serves. Only for statements that are safe to run twice (reads, and
    the ingest inserts, which skip rows already stored). If the server is really down, the
    reconnect fails and the error goes up as before (the endpoints answer 503).
    """
    try:
        return _rows(sql, params)
    except OperationalError:
        if connection.in_atomic_block or not connection.autocommit or not _connection_lost():
            raise
    connection.close()
    return _rows(sql, params)


def _rows(sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    with hot_path_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
