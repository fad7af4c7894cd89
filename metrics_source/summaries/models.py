"""Tables the dashboard reads instead of scanning raw events.

Written only by the rollup service (rollup.py), which turns queued events into these rows;
the dashboard only reads them.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower


class SummaryQueue(models.Model):
    """Events stored but not yet summarised. Each ingest statement adds one row holding the ids
    of the events it stored (one row per batch, not per event: a row per event cost about as
    much PostgreSQL time as the rest of the summaries' share of ingest). The rollup deletes the
    rows it has summarised, in the transaction that summarises them, so each event is counted
    exactly once."""

    id = models.BigAutoField(primary_key=True)
    event_ids = ArrayField(models.BigIntegerField())

    class Meta:
        db_table = "summary_queue"

    def __str__(self) -> str:
        return f"{len(self.event_ids)} events from {min(self.event_ids, default=None)}"


class DeliverySummary(models.Model):
    """One row per delivery, like Customer.io's own per-delivery record: who, what sent it,
    and the first time it reached each metric (metrics.FIRST_TIMES; a test keeps the two
    lists equal)."""

    delivery_id = models.CharField(max_length=200, primary_key=True)
    source_id = models.IntegerField(default=0)  # 0: the source was deleted or never known
    channel = models.CharField(max_length=20)
    parent_kind = models.CharField(max_length=16, blank=True)
    parent_id = models.BigIntegerField(default=0)
    action_id = models.BigIntegerField(null=True, blank=True)
    person_id = models.CharField(max_length=200, null=True, blank=True)
    recipient = models.CharField(max_length=320, null=True, blank=True)
    subject = models.CharField(max_length=300, null=True, blank=True)
    failure_message = models.CharField(max_length=500, null=True, blank=True)
    # The first and last event of the delivery, whatever their metric.
    created_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    # Raw counts (every event, not once per delivery).
    events = models.IntegerField(default=0)
    opens = models.IntegerField(default=0)
    machine_opens = models.IntegerField(default=0)
    clicks = models.IntegerField(default=0)
    machine_clicks = models.IntegerField(default=0)
    # The first time of each metric.
    drafted_at = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    human_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    human_clicked_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    suppressed_at = models.DateTimeField(null=True, blank=True)
    spammed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    undeliverable_at = models.DateTimeField(null=True, blank=True)
    deferred_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "delivery_summary"
        indexes = [
            models.Index(fields=["person_id", "created_at"], name="summary_person"),
            # Email addresses are searched in any case: the index holds them lower-cased.
            models.Index(Lower("recipient"), "created_at", name="summary_recipient_lower"),
            # Delivery and person ids are searched by prefix (LIKE 'abc%' needs these).
            models.Index(
                fields=["delivery_id"],
                name="summary_delivery_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["person_id"],
                name="summary_person_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(fields=["parent_kind", "parent_id", "created_at"], name="summary_parent"),
            models.Index(fields=["channel", "created_at"], name="summary_channel"),
        ]

    def __str__(self) -> str:
        return self.delivery_id


class HourlyCount(models.Model):
    """What every hourly count is filed under: the hour (UTC), the source, the channel and
    the parent (campaign, broadcast, newsletter or transactional message; '' and 0 for none)."""

    bucket = models.DateTimeField()
    source_id = models.IntegerField()
    channel = models.CharField(max_length=20)
    parent_kind = models.CharField(max_length=16, blank=True)
    parent_id = models.BigIntegerField()

    class Meta:
        abstract = True


class MetricCount(HourlyCount):
    """Counts per hour x basis x source x channel x parent x metric.

    ``deliveries`` counts each delivery once, in the hour it first reached the metric (event
    basis) or in the hour it was sent (sent basis); ``events`` counts every event.
    Events without a delivery (subscription changes) count as one delivery each.
    """

    basis = models.SmallIntegerField()
    metric = models.CharField(max_length=30)
    events = models.BigIntegerField(default=0)
    machine_events = models.BigIntegerField(default=0)
    deliveries = models.BigIntegerField(default=0)
    human_deliveries = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metric_count"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "basis",
                    "bucket",
                    "channel",
                    "metric",
                    "parent_kind",
                    "parent_id",
                    "source_id",
                ],
                name="metric_count_key",
            )
        ]
        indexes = [
            models.Index(
                fields=["parent_kind", "parent_id", "basis", "bucket"], name="metric_count_parent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.channel} {self.metric}"


class ActionCount(HourlyCount):
    """Unique deliveries as in MetricCount, by the action that sent them (campaign and
    broadcast steps), for the per-action breakdown of one parent; only rows with a parent.
    Raw event counts are left out: the breakdown never shows them, and they would cost a row
    per action, hour and metric touched."""

    basis = models.SmallIntegerField()
    parent_kind = models.CharField(max_length=16)  # never '': only deliveries with a parent
    action_id = models.BigIntegerField()  # 0: no action named
    metric = models.CharField(max_length=30)
    deliveries = models.BigIntegerField(default=0)
    human_deliveries = models.BigIntegerField(default=0)

    class Meta:
        db_table = "action_count"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "parent_kind",
                    "parent_id",
                    "basis",
                    "bucket",
                    "action_id",
                    "channel",
                    "metric",
                    "source_id",
                ],
                name="action_count_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.parent_kind} {self.parent_id} action {self.action_id} {self.metric}"


class FailureCount(HourlyCount):
    """Failures per hour x source x channel x parent x metric x failure message."""

    metric = models.CharField(max_length=30)
    message = models.CharField(max_length=300)
    events = models.BigIntegerField(default=0)

    class Meta:
        db_table = "failure_count"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "bucket",
                    "channel",
                    "metric",
                    "parent_kind",
                    "parent_id",
                    "source_id",
                    "message",
                ],
                name="failure_count_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.metric}: {self.message}"


class LinkCount(HourlyCount):
    """Clicks per hour x source x channel x parent x link."""

    link = models.CharField(max_length=500)
    clicks = models.BigIntegerField(default=0)
    machine_clicks = models.BigIntegerField(default=0)

    class Meta:
        db_table = "link_count"
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "channel", "parent_kind", "parent_id", "source_id", "link"],
                name="link_count_key",
            )
        ]
        indexes = [
            models.Index(fields=["parent_kind", "parent_id", "bucket"], name="link_count_parent")
        ]

    def __str__(self) -> str:
        return self.link


class MessageParent(models.Model):
    """Every campaign, broadcast, newsletter and transactional message seen, with a label
    (the first subject seen) and its channels, for the campaign list and filters."""

    parent_kind = models.CharField(max_length=16)
    parent_id = models.BigIntegerField()
    label = models.CharField(max_length=300, blank=True)
    channels = ArrayField(models.CharField(max_length=20), default=list)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "message_parent"
        constraints = [
            models.UniqueConstraint(fields=["parent_kind", "parent_id"], name="message_parent_key")
        ]

    def __str__(self) -> str:
        return f"{self.parent_kind} {self.parent_id}"
