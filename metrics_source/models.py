"""Sources that send events, and the events themselves, stored once each."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from metrics_source.fields import EncryptedTextField, JSONTextField
from metrics_source.ingest.catalog import Channel, Metric


class Source(models.Model):
    """A sender of events: an SDK or pipeline (write key) or a Customer.io workspace (webhook).

    The write key is stored only as a SHA-256 digest: it is a long random token, so a fast
    hash is safe, and the key itself is shown once, when it is created or rotated.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(
        max_length=100,
        unique=True,
        help_text="Names the source in its reporting-webhook URL: /webhooks/customerio/SLUG",
    )
    write_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    write_key_hint = models.CharField(
        max_length=16, editable=False, help_text="The key's last characters, to recognise it."
    )
    webhook_signing_secret = EncryptedTextField(
        blank=True,
        help_text="Customer.io's reporting-webhook signing key. Webhooks are refused until set.",
    )
    # Overlapping secrets: after a rotation the previous key (or signing secret) is still
    # accepted until its time is up, so senders can move over without losing a request. Only
    # one previous value is kept: a second rotation replaces it.
    previous_write_key_hash = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    previous_write_key_hint = models.CharField(max_length=16, blank=True, editable=False)
    previous_write_key_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    previous_webhook_signing_secret = EncryptedTextField(blank=True, editable=False)
    previous_webhook_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Origin(models.TextChoices):
    TRACK = "track", "Tracking API"
    WEBHOOK = "webhook", "Reporting webhook"
    IMPORT = "import", "Bulk import"


class Event(models.Model):
    """One message-activity event in Customer.io's semantic track-event format.

    Typed columns serve the reads (charts by channel, metric, parent and time; one delivery's
    timeline; one person's deliveries); ``properties`` and ``context`` keep everything else,
    and ``raw`` keeps the event exactly as it was received.
    """

    # Unique through Meta.constraints: a plain unique=True would also add a LIKE index.
    message_id = models.CharField(max_length=200)
    # No database foreign key or index: each would cost every insert on the hot path, and
    # only this code writes the column, always with an existing source.
    source = models.ForeignKey(
        Source,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    origin = models.CharField(max_length=10, choices=Origin.choices)

    event = models.CharField(max_length=100)
    channel = models.CharField(max_length=20, choices=[(c.value, c.value) for c in Channel])
    metric = models.CharField(max_length=30, choices=[(m.value, m.value) for m in Metric])
    semantic = models.BooleanField(help_text="In Customer.io's semantic event list.")

    user_id = models.CharField(max_length=200, null=True, blank=True)
    anonymous_id = models.CharField(max_length=200, null=True, blank=True)
    email = models.CharField(max_length=320, null=True, blank=True)
    delivery_id = models.CharField(max_length=200, null=True, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True)
    broadcast_id = models.BigIntegerField(null=True, blank=True)
    newsletter_id = models.BigIntegerField(null=True, blank=True)
    transactional_message_id = models.BigIntegerField(null=True, blank=True)
    action_id = models.BigIntegerField(null=True, blank=True)
    journey_id = models.CharField(max_length=100, null=True, blank=True)
    content_id = models.BigIntegerField(null=True, blank=True)
    trigger_id = models.BigIntegerField(null=True, blank=True)

    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    properties = models.JSONField(default=dict)
    context = models.JSONField(default=dict)
    raw = JSONTextField(help_text="The event as received.")
    # Which tools the sender asked to receive the call (the batch's merged in), forwarded as is.
    integrations = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            # The dedupe key: INSERT ... ON CONFLICT (message_id) DO NOTHING relies on it.
            models.UniqueConstraint(fields=["message_id"], name="event_message_id_unique"),
        ]
        # Only the reads that need single rows: one delivery's timeline and one person's
        # events. Charts and tables read the summaries (metrics_source/summaries), so the
        # hot insert path maintains no index for them.
        indexes = [
            models.Index(
                fields=["delivery_id", "timestamp"],
                name="event_delivery_ts",
                condition=Q(delivery_id__isnull=False),
            ),
            models.Index(
                fields=["user_id", "timestamp"],
                name="event_user_ts",
                condition=Q(user_id__isnull=False),
            ),
            # People known by no id (an email or a Customer.io id in anonymousId), for the
            # admin's search; partial, so events that name a userId never maintain it.
            models.Index(
                fields=["anonymous_id", "timestamp"],
                name="event_anonymous_ts",
                condition=Q(user_id__isnull=True, anonymous_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.message_id}"


# Forwarding's models live beside their services; importing them here registers them.
from metrics_source.access.models import AuditAction, AuditEntry, DashboardAccess  # noqa: E402
from metrics_source.forwarding.models import (  # noqa: E402
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Destination,
)
from metrics_source.naming.models import MessageName, NameKind  # noqa: E402
from metrics_source.summaries.models import (  # noqa: E402
    ActionCount,
    DeliverySummary,
    FailureCount,
    LinkCount,
    MessageParent,
    MetricCount,
    SummaryQueue,
)

__all__ = [
    "ActionCount",
    "AuditAction",
    "AuditEntry",
    "DashboardAccess",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "DeliverySummary",
    "Destination",
    "Event",
    "FailureCount",
    "LinkCount",
    "MessageName",
    "MessageParent",
    "MetricCount",
    "NameKind",
    "Source",
    "SummaryQueue",
]
