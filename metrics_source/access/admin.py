"""The audit log in the admin (filter by person, action and time; nothing can be changed or
removed), and the accounts and roles pages with their changes audited."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest

from metrics_source.access.models import AuditEntry
from metrics_source.runtime.admin_base import AuditedAdmin, ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_repr", "ip_address"]
    list_filter = ["action", "actor", "object_type"]
    date_hierarchy = "at"
    search_fields = ["actor", "object_id", "object_repr", "ip_address"]
    readonly_fields = [field.name for field in AuditEntry._meta.fields]
    list_per_page = 100
    # Nothing runs on entries, not even Django's "delete selected".
    actions = None


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    role_fields = ("groups", "user_permissions", "is_superuser", "is_staff", "is_active")


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    role_fields = ("name", "permissions")


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, AuditedGroupAdmin)


class GuardedAccessAttemptAdmin(AccessAttemptAdmin):
    """django-axes' lockout list, with its clean-up action declaring the permission it needs
    (as every action here does; the library's declares none)."""

    actions = ["cleanup_expired_attempts"]

    @admin.action(permissions=["delete"], description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().cleanup_expired_attempts(request, queryset)


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, GuardedAccessAttemptAdmin)
