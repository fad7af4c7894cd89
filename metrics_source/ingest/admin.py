"""Ingest's admin: sources (write keys shown once, secrets write-only) and read-only events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from metrics_source.access.audit import audit_each, audit_record
from metrics_source.access.models import AuditAction
from metrics_source.ingest.sources import (
    source_rotate_write_key,
    source_save_new,
    sources_set_enabled,
)
from metrics_source.models import Event, Source
from metrics_source.runtime.admin_base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    WriteOnlySecretField,
    copyable,
)


def webhook_url_for(request: HttpRequest, source: Source) -> str:
    path = reverse("api:customerio_webhook", kwargs={"slug": source.slug})
    return request.build_absolute_uri(path)


class SourceForm(forms.ModelForm):
    webhook_signing_secret = WriteOnlySecretField(
        required=False,
        strip=True,
        max_length=Source._meta.get_field("webhook_signing_secret").max_length,
        label="Webhook signing secret",
        help_text=(
            "Customer.io's reporting-webhook signing key (Data & Integrations > Reporting "
            "webhooks). Never shown again after saving."
        ),
    )
    clear_webhook_signing_secret = forms.BooleanField(
        required=False,
        label="Remove the signing secret",
        help_text="Webhooks for this source are then refused until a new secret is set.",
    )

    class Meta:
        model = Source
        fields = ["name", "slug", "enabled", "webhook_signing_secret"]
        # The admin renders help text as HTML, so the model's "<slug>" would vanish.
        help_texts = {"slug": "Names the source in its reporting-webhook URL."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Say whether a secret is set without rendering anything of it.
        is_set = bool(self.instance.pk and self.instance.webhook_signing_secret)
        secret = self.fields["webhook_signing_secret"]
        secret.widget.attrs["placeholder"] = (
            "set (type a new one to replace it)" if is_set else "not set"
        )
        if is_set:
            secret.help_text += " Leave blank to keep the current one."
        else:
            secret.help_text += " Webhooks for this source are refused until it is set."

    def clean_webhook_signing_secret(self) -> str:
        new_secret = self.cleaned_data.get("webhook_signing_secret") or ""
        return new_secret or (self.instance.webhook_signing_secret if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_webhook_signing_secret"):
            if self.data.get(self.add_prefix("webhook_signing_secret")):
                self.add_error(
                    "clear_webhook_signing_secret",
                    "Either enter a new secret or remove the current one, not both.",
                )
            cleaned["webhook_signing_secret"] = ""
        return cleaned


def _show_write_key_once(request: HttpRequest, source: Source, write_key: str) -> None:
    messages.warning(
        request,
        format_html(
            "Write key for <strong>{}</strong>: {} Copy it now: only its hash is stored, so it "
            "will not be shown again.",
            source.name,
            copyable(write_key),
        ),
    )


@admin.register(Source)
class SourceAdmin(AuditedAdmin):
    form = SourceForm
    list_display = ["name", "enabled", "has_secret", "write_key_display", "webhook_url"]
    list_filter = ["enabled"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["write_key_display", "created_at", "updated_at"]
    # Each action changes state: it needs the change permission (view-only staff see none).
    actions = ["rotate_write_key", "enable", "disable"]

    def get_fieldsets(self, request: HttpRequest, obj: Source | None = None) -> Any:
        secret_fields = ["webhook_signing_secret"]
        if obj is not None and obj.webhook_signing_secret:
            secret_fields.append("clear_webhook_signing_secret")
        if obj is None:
            return [(None, {"fields": ["name", "slug", "enabled", *secret_fields]})]
        return [
            (None, {"fields": ["name", "slug", "enabled"]}),
            (
                "Write key",
                {
                    "fields": ["write_key_display"],
                    "description": "To replace the key, select the source in the list and "
                    "run the “Rotate write key” action.",
                },
            ),
            ("Reporting webhook", {"fields": secret_fields}),
            (None, {"fields": ["created_at", "updated_at"]}),
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        # The column needs the request to build an absolute URL; list_display callables get only
        # the row, so the request is bound in a closure made for this request.
        @admin.display(description="webhook URL")
        def webhook_url(source: Source) -> str:
            return copyable(webhook_url_for(request, source), wrap_at="/")

        return [webhook_url if name == "webhook_url" else name for name in self.list_display]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        source = self.get_object(request, unquote(object_id))
        if source is not None:
            extra_context = {
                **(extra_context or {}),
                "webhook_url": webhook_url_for(request, source),
                "has_secret": bool(source.webhook_signing_secret),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="write key")
    def write_key_display(self, source: Source) -> str:
        return f"msk_…{source.write_key_hint}" if source.write_key_hint else "—"

    @admin.display(description="webhook URL")
    def webhook_url(self, source: Source) -> str:
        # Replaced per request by get_list_display; kept so the admin checks see the column.
        return reverse("api:customerio_webhook", kwargs={"slug": source.slug})

    @admin.display(boolean=True, description="signing secret")
    def has_secret(self, source: Source) -> bool:
        return bool(source.webhook_signing_secret)

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            _show_write_key_once(request, obj, source_save_new(source=obj))

    @admin.action(
        permissions=["change"],
        description="Rotate write key (the old key stops working within seconds)",
    )
    def rotate_write_key(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            write_key = source_rotate_write_key(source=source)
            audit_record(action=AuditAction.KEY_ROTATED, request=request, target=source)
            _show_write_key_once(request, source, write_key)

    @admin.action(permissions=["change"], description="Enable selected sources")
    def enable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        sources_set_enabled(source_ids=list(queryset.values_list("pk", flat=True)), enabled=True)
        audit_each(action=AuditAction.SOURCE_ENABLED, request=request, targets=queryset)

    @admin.action(
        permissions=["change"], description="Disable selected sources (their requests get 403)"
    )
    def disable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        sources_set_enabled(source_ids=list(queryset.values_list("pk", flat=True)), enabled=False)
        audit_each(action=AuditAction.SOURCE_DISABLED, request=request, targets=queryset)


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


def _pretty_json(value: Any) -> SafeString:
    return format_html(
        '<pre class="ms-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


# Event fields the detail page shows only when they hold a value.
_SHOWN_WHEN_SET = frozenset(
    {f.name for f in Event._meta.fields if f.name.endswith("_id") and f.name != "message_id"}
    | {"email", "original_timestamp", "sent_at"}
)


def _moment(value: datetime | None, *, milliseconds: bool) -> str:
    """A stored time in TIME_ZONE, ISO-like: "2026-11-17 15:42:07" (".250 UTC" on detail)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    if not milliseconds:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')}.{local.microsecond // 1000:03d} {local.tzname()}"


# The event page's times, to the millisecond as events carry them: display name -> field.
_MOMENT_FIELDS = {
    "timestamp_shown": "timestamp",
    "original_timestamp_shown": "original_timestamp",
    "sent_at_shown": "sent_at",
    "received_at_shown": "received_at",
}


def _moment_display(field: str) -> Any:
    """The event page's row for one of its times, to the millisecond."""

    @admin.display(description=field.replace("_", " "))
    def shown(model_admin: admin.ModelAdmin, event: Event) -> str:
        return _moment(getattr(event, field), milliseconds=True)

    return shown


def _shown(event: Event, name: str) -> bool:
    """Whether the event page shows this row: optional fields only when they hold a value."""
    field = _MOMENT_FIELDS.get(name, name)
    return field not in _SHOWN_WHEN_SET or getattr(event, field) is not None


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["event", "when", "person", "delivery", "message_id_short", "source"]
    # Sorting millions of rows by a text column is slow; the default order is newest first.
    sortable_by = ["when"]
    list_filter = ["channel", "metric", "semantic", "origin", "source"]
    # Declared so the search box shows; get_search_results does the (exact) matching.
    search_fields = ["=message_id", "=delivery_id", "=user_id"]
    search_help_text = (
        "An exact messageId, delivery_id or userId, or the anonymousId (an email, say) of "
        "someone with no userId"
    )
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = ["source"]
    readonly_fields = ["properties_json", "context_json", "raw_json", *_MOMENT_FIELDS]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "event",
                    "channel",
                    "metric",
                    "semantic",
                    "message_id",
                    "source",
                    "origin",
                ]
            },
        ),
        ("Person", {"fields": ["user_id", "anonymous_id", "email"]}),
        (
            "Message",
            {
                "fields": [
                    "delivery_id",
                    "campaign_id",
                    "broadcast_id",
                    "newsletter_id",
                    "transactional_message_id",
                    "action_id",
                    "journey_id",
                    "content_id",
                    "trigger_id",
                ]
            },
        ),
        ("Time", {"fields": list(_MOMENT_FIELDS)}),
        ("Payload", {"fields": ["properties_json", "context_json", "raw_json"]}),
    ]

    @admin.display(description="timestamp", ordering="timestamp")
    def when(self, event: Event) -> str:
        # To the second and compact: the default "Nov. 17, 2026, 3:42 p.m." drops the seconds
        # a sequence of events needs and widens the table.
        return _moment(event.timestamp, milliseconds=False)

    timestamp_shown = _moment_display("timestamp")
    original_timestamp_shown = _moment_display("original_timestamp")
    sent_at_shown = _moment_display("sent_at")
    received_at_shown = _moment_display("received_at")

    @admin.display(description="person")
    def person(self, event: Event) -> SafeString | str:
        # Someone known by no id is still someone: their anonymousId (often an email), marked.
        if event.user_id:
            return event.user_id
        if event.anonymous_id:
            return format_html(
                '{} <span class="ms-muted" title="anonymousId: no userId">(anonymous)</span>',
                event.anonymous_id,
            )
        return "—"

    @admin.display(description="delivery id")
    def delivery(self, event: Event) -> SafeString | str:
        # On one line like the message id: the full id in the tooltip and on the detail page.
        if not event.delivery_id:
            return "—"
        return format_html('<span class="ms-id" title="{0}">{0}</span>', event.delivery_id)

    @admin.display(description="message id")
    def message_id_short(self, event: Event) -> SafeString:
        # Long ids are cut by CSS; the full id is in the tooltip and on the detail page.
        return format_html('<span class="ms-id" title="{0}">{0}</span>', event.message_id)

    @admin.display(description="properties")
    def properties_json(self, event: Event) -> SafeString:
        return _pretty_json(event.properties)

    @admin.display(description="context")
    def context_json(self, event: Event) -> SafeString:
        return _pretty_json(event.context)

    @admin.display(description="as received")
    def raw_json(self, event: Event) -> SafeString:
        return _pretty_json(event.raw)

    def get_fieldsets(self, request: HttpRequest, obj: Event | None = None) -> Any:
        # An event has one parent and few of the optional ids: rows of dashes hide the rest.
        if obj is None:
            return self.fieldsets
        fieldsets = []
        for name, options in self.fieldsets:
            fields = [f for f in options["fields"] if _shown(obj, str(f))]
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        # Exact and case-sensitive: "=field" would mean iexact, which compares UPPER() values,
        # cannot use the indexes, and would merge delivery ids that differ only in case
        # (they are base64).
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = (
            Q(message_id=term)
            | Q(delivery_id=term)
            | Q(user_id=term)
            | Q(user_id__isnull=True, anonymous_id=term)  # the event_anonymous_ts index
        )
        return queryset.filter(matches), False
