"""The audit log's table, and the home of the dashboard's permissions."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from metrics_source.access.permissions import DASHBOARD_PERMISSIONS


class DashboardAccess(models.Model):
    """No table: Django attaches permissions to models, and the dashboard's pages are none."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = tuple(DASHBOARD_PERMISSIONS)

    def __str__(self) -> str:
        return "dashboard access"


class AuditAction(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Sign-in failed"
    LOGOUT = "logout", "Signed out"
    ROLE_CHANGED = "role_changed", "Roles or permissions changed"
    KEY_ROTATED = "key_rotated", "Write key rotated"
    KEY_GRACE_ENDED = "key_grace_ended", "Previous write key ended early"
    SOURCE_ENABLED = "source_enabled", "Source enabled"
    SOURCE_DISABLED = "source_disabled", "Source disabled"
    CREATED = "created", "Created"
    CHANGED = "changed", "Changed"
    DELETED = "deleted", "Deleted"
    DESTINATION_PAUSED = "destination_paused", "Destination paused"
    DESTINATION_RESUMED = "destination_resumed", "Destination resumed"
    REPLAY = "replay", "Replay started"
    TEST_EVENT = "test_event", "Test event sent"
    CSV_EXPORT = "csv_export", "CSV downloaded"
    PERSON_VIEWED = "person_viewed", "Person page viewed"
    NAMES_IMPORTED = "names_imported", "Names imported"


class AuditEntry(models.Model):
    """One thing a person did. Append-only: a database trigger refuses UPDATE and DELETE, and
    the admin shows entries read-only. The actor is kept by id and name, not by foreign key,
    so an entry outlives (and never changes with) its account."""

    at = models.DateTimeField(default=timezone.now)
    actor_id = models.IntegerField(null=True, blank=True)
    # The username at the time; for a failed sign-in, the name that was typed.
    actor = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "metrics_source_auditentry"
        ordering = ["-at", "-id"]
        default_permissions = ("view",)
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["at"], name="audit_at"),
            models.Index(fields=["actor", "at"], name="audit_actor_at"),
            models.Index(fields=["action", "at"], name="audit_action_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor or 'system'} {self.action}"
