"""Admin building blocks the domains' admin modules share: a value shown once with a Copy
button, a secret field that is never rendered back, and the base for read-only records.

They live apart from any one domain so that ingest's and forwarding's admin modules both
import from here, never from each other."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe


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
