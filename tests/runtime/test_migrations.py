"""Every migration of the project can be undone and done again (the house rule for them)."""

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
    indexes_before, columns_before, constraints_before = _indexes(), _columns(), _constraints()
    call_command("migrate", "metrics_source", "zero", verbosity=0)
    assert project_tables() == set()
    call_command("migrate", "metrics_source", verbosity=0)
    assert project_tables() == before
    assert _indexes() == indexes_before
    assert _columns() == columns_before
    assert _constraints() == constraints_before


def _columns() -> set[tuple[str, str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        )
        return set(cursor.fetchall())


def _constraints() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace"
        )
        return set(cursor.fetchall())


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return {row[0] for row in cursor.fetchall()}
