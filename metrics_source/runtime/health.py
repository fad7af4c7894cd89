"""Liveness of the two services the system depends on."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from kombu import Connection


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # any failure means "down"; the class name says which kind
        return f"down ({type(error).__name__})"


def broker_status() -> str:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
            # One attempt: a retry would first sleep kombu's 2 s back-off, and a health probe
            # must answer quickly, above all when something is down.
            broker.ensure_connection(max_retries=0, timeout=2)
        return "ok"
    except Exception as error:  # never echo the error text: it may contain the broker URL
        return f"down ({type(error).__name__})"
