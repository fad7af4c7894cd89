"""Admin building blocks the domains' admin modules share: a value shown once with a Copy
button, a secret field that is never rendered back, the base for read-only records, and the
base that writes each add, change and delete to the audit log.

They live apart from any one domain so that ingest's and forwarding's admin modules both
import from here, never from each other."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction


def copyable(text: str, *, wrap_at: str = "") -> SafeString:
    """Text with a Copy button. The button copies the text of the element before it, so a
    secret appears in the page once (templates/admin/metrics_source/_copy.html holds the script
    and styles). ``wrap_at`` characters may end a line (<wbr> adds nothing to the copied text).
    """
    shown = conditional_escape(text)
    for char in wrap_at:
        shown = mark_safe(shown.replace(char, char + "<wbr>"))  # noqa: S308 (escaped above)
    return format_html(
        '<code class="ms-copy">{}</code><button type="button" class="ms-copy-button">Copy</button>',
        shown,
    )


class WriteOnlySecretField(forms.CharField):
    """A secret that is never rendered back; blank means "keep the current one"."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def has_changed(self, initial: Any, data: Any) -> bool:
        # Blank keeps the secret, so only a typed value is a change (and goes in the history).
        return bool(data)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the system (events, the forwarding ledger): view, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _changed_fields(message: Any) -> list[str]:
    """The field names in the admin's change message (a list of {"changed": {...}} parts)."""
    fields: list[str] = []
    for part in message if isinstance(message, list) else []:
        fields.extend(part.get("changed", {}).get("fields", []))
    return fields


class AuditedAdmin(admin.ModelAdmin):
    """Adds, changes and deletes made in this admin go in the audit log (beside Django's own
    history, which anyone with change rights can see but which has no address and no login).
    ``role_fields`` names the fields whose change is a change of someone's rights."""

    role_fields: tuple[str, ...] = ()

    def _action_for(self, fields: list[str]) -> AuditAction:
        verbose = {str(self.model._meta.get_field(name).verbose_name) for name in self.role_fields}
        if verbose & {field.lower() for field in fields}:
            return AuditAction.ROLE_CHANGED
        return AuditAction.CHANGED

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        audit_record(action=AuditAction.CREATED, request=request, target=obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        fields = _changed_fields(message)
        if fields:
            audit_record(
                action=self._action_for(fields),
                request=request,
                target=obj,
                detail={"fields": fields},
            )
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit_record(action=AuditAction.DELETED, request=request, target=obj)
        return super().log_deletions(request, queryset)
