"""A partial index on the events of people known by no id, for the admin's search by email or
anonymousId. Built concurrently: ingest keeps writing while a large table is indexed."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("metrics_source", "0008_summary_queue_batches"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                condition=models.Q(("anonymous_id__isnull", False), ("user_id__isnull", True)),
                fields=["anonymous_id", "timestamp"],
                name="event_anonymous_ts",
            ),
        ),
    ]
