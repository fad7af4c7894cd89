"""A display name for something events know only by its id."""

from __future__ import annotations

from django.db import models


class NameKind(models.TextChoices):
    # The first four are the parents of deliveries (metrics_source.summaries.metrics.ParentKind).
    CAMPAIGN = "campaign", "Campaign"
    BROADCAST = "broadcast", "Broadcast"
    NEWSLETTER = "newsletter", "Newsletter"
    TRANSACTIONAL = "transactional", "Transactional message"
    ACTION = "action", "Action"
    JOURNEY = "journey", "Journey"


class MessageName(models.Model):
    """What people call campaign 101 or action 1011. Without one the pages show the id (and,
    for a parent, the first subject seen)."""

    kind = models.CharField(max_length=16, choices=NameKind.choices)
    object_id = models.BigIntegerField(
        "id", help_text="The id in Customer.io (the campaign_id, action_id, ... of the events)."
    )
    name = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "message_name"
        ordering = ["kind", "object_id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="message_name_key"),
            models.CheckConstraint(condition=models.Q(object_id__gte=0), name="message_name_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_id} · {self.name}"
