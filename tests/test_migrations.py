"""Every migration of the project can be undone and done again (the README promises it)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def project_tables() -> set[str]:
    """The project's model tables that exist now."""
    models = apps.get_app_config("metrics_source").get_models()
    return {model._meta.db_table for model in models} & set(connection.introspection.table_names())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_migration_is_reversible():
    executor = MigrationExecutor(connection)
    leaves = [node for node in executor.loader.graph.leaf_nodes() if node[0] == "metrics_source"]
    assert leaves, "no migrations of the project found"
    before = project_tables()
    assert len(before) >= 10  # events, sources, forwarding, summaries
    indexes_before = _indexes()
    call_command("migrate", "metrics_source", "zero", verbosity=0)
    assert project_tables() == set()
    call_command("migrate", "metrics_source", verbosity=0)
    assert project_tables() == before
    assert _indexes() == indexes_before


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return {row[0] for row in cursor.fetchall()}
