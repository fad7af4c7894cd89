"""Admin: sources (write keys shown once, secrets write-only) and read-only events."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from metrics_source.models import Event, Source
from metrics_source.sources import source_prepare_new, source_rotate_write_key


class SourceForm(forms.ModelForm):
    # Write-only: the saved secret is never rendered back into the page.
    webhook_signing_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Customer.io's reporting-webhook signing key (Data & Integrations > Reporting "
            "webhooks). Never shown again after saving; leave blank to keep the current one."
        ),
    )
    clear_webhook_signing_secret = forms.BooleanField(
        required=False, help_text="Remove the secret (webhooks are then refused)."
    )

    class Meta:
        model = Source
        fields = ["name", "slug", "enabled", "webhook_signing_secret"]

    def clean_webhook_signing_secret(self) -> str:
        new_secret = self.cleaned_data.get("webhook_signing_secret") or ""
        return new_secret or (self.instance.webhook_signing_secret if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_webhook_signing_secret"):
            cleaned["webhook_signing_secret"] = ""
        return cleaned


def _show_write_key_once(request: HttpRequest, source: Source, write_key: str) -> None:
    messages.warning(
        request,
        format_html(
            "Write key for <strong>{}</strong>: <code>{}</code> &mdash; copy it now, it will not "
            "be shown again.",
            source.name,
            write_key,
        ),
    )


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = [
        "name",
        "enabled",
        "write_key_display",
        "webhook_url",
        "has_secret",
        "created_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["write_key_display", "webhook_url", "created_at", "updated_at"]
    actions = ["rotate_write_key", "enable", "disable"]

    @admin.display(description="write key")
    def write_key_display(self, source: Source) -> str:
        return f"msk_…{source.write_key_hint}" if source.write_key_hint else "—"

    @admin.display(description="webhook URL")
    def webhook_url(self, source: Source) -> str:
        if not source.slug:
            return "—"
        return reverse("api:customerio_webhook", kwargs={"slug": source.slug})

    @admin.display(boolean=True, description="signing secret")
    def has_secret(self, source: Source) -> bool:
        return bool(source.webhook_signing_secret)

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        write_key = None if change else source_prepare_new(source=obj)
        super().save_model(request, obj, form, change)
        if write_key:
            _show_write_key_once(request, obj, write_key)

    @admin.action(description="Rotate write key (the old key stops working at once)")
    def rotate_write_key(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            write_key = source_rotate_write_key(source=source)
            _show_write_key_once(request, source, write_key)

    @admin.action(description="Enable selected sources")
    def enable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        queryset.update(enabled=True)

    @admin.action(description="Disable selected sources (their requests get 403)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        queryset.update(enabled=False)


class EstimatedCountPaginator(Paginator):
    """Unfiltered event lists use PostgreSQL's row estimate: COUNT(*) over millions is slow."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [Event._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 100_000:
                return int(row[0])
        return super().count


def _pretty_json(value: Any) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "event",
        "message_id",
        "user_id",
        "delivery_id",
        "timestamp",
        "source",
        "semantic",
    ]
    list_filter = ["channel", "metric", "semantic", "origin", "source"]
    # Exact matches only: each of these columns has an index.
    search_fields = ["=message_id", "=delivery_id", "=user_id"]
    search_help_text = "Exact messageId, delivery_id or userId"
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = ["source"]
    exclude = ["properties", "context", "raw"]
    readonly_fields = [
        f.name for f in Event._meta.fields if f.name not in ("properties", "context", "raw")
    ] + ["properties_json", "context_json", "raw_json"]

    @admin.display(description="properties")
    def properties_json(self, event: Event) -> str:
        return _pretty_json(event.properties)

    @admin.display(description="context")
    def context_json(self, event: Event) -> str:
        return _pretty_json(event.context)

    @admin.display(description="as received")
    def raw_json(self, event: Event) -> str:
        return _pretty_json(event.raw)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False
