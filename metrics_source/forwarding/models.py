"""Destinations, and the ledger of what each was sent: one Delivery per (destination, event),
one DeliveryAttempt per HTTP request.

PostgreSQL holds the whole forwarding state; Redis only carries wake-ups, so a flushed broker
or a killed worker delays events but never loses them.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from metrics_source.fields import EncryptedTextField


class DestinationKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Standard Webhooks signed)"
    SEGMENT = "segment", "Segment-compatible tracking API (/v1/batch)"


class Destination(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=DestinationKind.choices)
    enabled = models.BooleanField(default=True)
    url = models.URLField(
        max_length=500,
        help_text="Webhook: the endpoint. Segment-compatible: the base URL (…/v1/batch is added).",
    )
    # Write-only in the admin. Webhook: whsec_... signing secret; Segment: the write key.
    secret = EncryptedTextField(blank=True)
    # A second signing secret during rotation: requests carry a signature for each.
    previous_secret = EncryptedTextField(blank=True)
    extra_headers = models.JSONField(default=dict, blank=True)

    # Filters: empty means "all". Parent ids are OR-ed: an event matches if any one matches.
    channels = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    event_names = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    sources = models.ManyToManyField("metrics_source.Source", blank=True, related_name="+")
    campaign_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    broadcast_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    newsletter_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    transactional_message_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)

    batch_size = models.PositiveIntegerField(
        default=1, help_text="Events per request; 1 sends each event on its own."
    )
    timeout_seconds = models.FloatField(default=15.0)
    max_requests_per_second = models.FloatField(null=True, blank=True, help_text="Blank: no limit.")
    backfill_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="On creation, also send the events stored before, from this date on.",
    )

    paused = models.BooleanField(default=False)
    pause_reason = models.TextField(blank=True)
    # Set at the first failure of a run of failures, cleared by any success: the circuit
    # breaker pauses the destination when this is older than FORWARDING_PAUSE_AFTER_SECONDS.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)

    # Fan-out bookkeeping (see forwarding/fanout.py): events with an id above fanout_floor may
    # still lack a ledger row; the pending pair becomes the floor once every transaction that
    # was running when it was read has ended.
    fanout_floor = models.BigIntegerField(default=0, editable=False)
    fanout_pending_floor = models.BigIntegerField(null=True, editable=False)
    fanout_pending_xmax = models.BigIntegerField(null=True, editable=False)
    backfill_done = models.BooleanField(default=False, editable=False)

    # One worker drains a destination at a time (isolation: a slow destination holds one
    # worker slot at most), and the request rate is paced across workers in the database.
    lease_until = models.DateTimeField(null=True, editable=False)
    next_request_at = models.DateTimeField(null=True, editable=False)
    # Set when the sweep enqueues a delivery task, so a busy broker does not fill up with
    # copies; once it passes, a task lost with Redis is enqueued again.
    queued_until = models.DateTimeField(null=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead"


# Rows a worker may claim once next_attempt_at has passed; an in-flight row's next_attempt_at
# is its claim's expiry, so a killed worker's batch becomes due again by itself.
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.IN_FLIGHT)


class Delivery(models.Model):
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # No index of its own: the unique (destination, event) pair serves lookups by event too
    # well enough for the admin, and every index costs each fan-out insert.
    event = models.ForeignKey(
        "metrics_source.Event", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "event"], name="delivery_destination_event_unique"
            ),
        ]
        indexes = [
            # The claim query, and nothing else: delivered and dead rows leave it, so it
            # stays as small as the backlog.
            models.Index(
                fields=["destination", "next_attempt_at"],
                name="delivery_due",
                condition=Q(status__in=[s.value for s in OPEN_STATUSES]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.destination_id}:{self.event_id} {self.status}"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    TRANSIENT = "transient", "Transient failure"
    PERMANENT = "permanent", "Permanent failure"


class DeliveryAttempt(models.Model):
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    webhook_id = models.CharField(max_length=200, blank=True)
    # The ledger rows this request carried: one array, not a join table row per event.
    delivery_ids = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        indexes = [
            models.Index(fields=["destination", "started_at"], name="attempt_destination_time")
        ]

    def __str__(self) -> str:
        return f"{self.destination_id} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class ReplayScope(models.TextChoices):
    DEAD = "dead", "Everything dead"
    EVENTS = "events", "Events in a time range / matching the filters"


class ReplayState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


UNFINISHED_REPLAY_STATES = (ReplayState.QUEUED, ReplayState.RUNNING)


class ReplayJob(models.Model):
    """A replay too large for one request, worked through in chunks of ids by Celery tasks.

    The cursor (``next_id``) advances in the same transaction as the chunk it covers, so a
    worker killed mid-replay loses at most an uncommitted chunk, and the sweep starts a fresh
    task once the lease has expired: the replay resumes where it stopped.
    """

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="replays")
    scope = models.CharField(max_length=10, choices=ReplayScope.choices)
    # EVENTS only: events at or after since and before until (either open); none = everything
    # matching the destination's filters.
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    state = models.CharField(max_length=10, choices=ReplayState.choices, default=ReplayState.QUEUED)
    # Matching rows counted when the replay starts (null before), and those worked through.
    total = models.BigIntegerField(null=True, blank=True)
    done = models.BigIntegerField(default=0)
    # Ledger rows made pending (rows being sent at that moment are left alone).
    replayed = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # The id range (event ids, or ledger ids for DEAD) fixed at the start, and the cursor.
    chunk_ids = models.PositiveIntegerField(default=50_000, editable=False)
    low_id = models.BigIntegerField(null=True, editable=False)
    high_id = models.BigIntegerField(null=True, editable=False)
    next_id = models.BigIntegerField(null=True, editable=False)
    # As for destinations: the running task's lease, and the sweep's "already enqueued" mark.
    lease_until = models.DateTimeField(null=True, editable=False)
    queued_until = models.DateTimeField(null=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The sweep's question ("which replays are unfinished?") reads only these rows.
            models.Index(
                fields=["id"],
                name="replayjob_unfinished",
                condition=Q(state__in=[s.value for s in UNFINISHED_REPLAY_STATES]),
            ),
        ]

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.destination_id} ({self.get_scope_display()})"

    @property
    def percent(self) -> float | None:
        if self.state == ReplayState.DONE:
            return 100.0
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)
