"""Ingest's admin: sources (write keys shown once, secrets write-only) and read-only events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
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
from metrics_source.ingest.auth import previous_key_until, previous_secret_until
from metrics_source.ingest.sources import (
    DEFAULT_GRACE,
    GraceInProgress,
    source_end_write_key_grace,
    source_replace_webhook_secret,
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


# How long a replaced write key or signing secret keeps working: hours -> label.
GRACE_CHOICES = [
    (0, "no grace: the old one stops now"),
    (1, "1 hour"),
    (24, "24 hours"),
    (72, "3 days"),
    (168, "7 days"),
    (720, "30 days"),
]
DEFAULT_GRACE_HOURS = int(DEFAULT_GRACE.total_seconds() // 3600)


class GraceChoiceField(forms.TypedChoiceField):
    """How long a replaced key or secret stays valid: part of a change, never one by itself
    (the history must not say a source changed when only this select was sent)."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return False

    def clean(self, value: Any) -> int:
        # Not sent (a script posting the action, a form without the select): the default.
        hours = super().clean(value)
        return DEFAULT_GRACE_HOURS if hours is None else hours


def _grace_field(label: str) -> GraceChoiceField:
    return GraceChoiceField(
        choices=GRACE_CHOICES,
        coerce=int,
        initial=DEFAULT_GRACE_HOURS,
        required=False,
        empty_value=None,
        label=label,
    )


def _until(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


class SourceActionForm(ActionForm):
    """The action bar's extra choice: how long the rotated-out key keeps working."""

    grace_hours = _grace_field("Old key valid for (rotation)")


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
        help_text="Webhooks for this source are then refused until a new secret is set "
        "(a previous secret still in its grace period goes too).",
    )
    webhook_secret_grace_hours = _grace_field("Keep accepting the replaced secret for")
    end_webhook_secret_grace = forms.BooleanField(
        required=False,
        label="Stop accepting the previous secret now",
        help_text="Once Customer.io signs with the new secret.",
    )

    class Meta:
        model = Source
        fields = ["name", "slug", "enabled", "webhook_signing_secret"]
        # The admin renders help text as HTML, so the model's "<slug>" would vanish.
        help_texts = {"slug": "Names the source in its reporting-webhook URL."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored secret, before the form puts the typed one on the instance: replacing
        # it keeps this one valid for the chosen grace period.
        self.stored_secret = self.instance.webhook_signing_secret if self.instance.pk else ""
        # Say whether a secret is set without rendering anything of it.
        is_set = bool(self.stored_secret)
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
        replacing = cleaned.get("webhook_signing_secret", "") not in ("", self.stored_secret)
        in_grace = self.instance.pk and previous_secret_until(self.instance)
        if (
            replacing
            and in_grace
            and cleaned.get("webhook_secret_grace_hours", DEFAULT_GRACE_HOURS)
            and not cleaned.get("end_webhook_secret_grace")
        ):
            # Replacing it again would silently drop the secret Customer.io may still use.
            self.add_error(
                "webhook_secret_grace_hours",
                "The previous secret is still accepted: tick “Stop accepting the previous "
                "secret now” as well, or choose no grace.",
            )
        return cleaned

    def apply_secret_change(self, source: Source) -> None:
        """Put the secret change on ``source``: a grace period ends early when asked, a
        replaced secret stays valid for the chosen grace period, and a removed one goes with
        its predecessor."""
        new_secret = source.webhook_signing_secret
        source.webhook_signing_secret = self.stored_secret
        if self.cleaned_data.get("end_webhook_secret_grace"):
            source.previous_webhook_signing_secret = ""
            source.previous_webhook_secret_expires_at = None
        hours = self.cleaned_data.get("webhook_secret_grace_hours", DEFAULT_GRACE_HOURS)
        grace = timedelta(hours=hours)
        source_replace_webhook_secret(source=source, new_secret=new_secret, grace=grace)


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
    readonly_fields = [
        "write_key_display",
        "previous_write_key_display",
        "previous_secret_display",
        "created_at",
        "updated_at",
    ]
    action_form = SourceActionForm
    # Each action changes state: it needs the change permission (view-only staff see none).
    actions = ["rotate_write_key", "end_write_key_grace", "enable", "disable"]

    def get_fieldsets(self, request: HttpRequest, obj: Source | None = None) -> Any:
        secret_fields = ["webhook_signing_secret"]
        if obj is not None and obj.webhook_signing_secret:
            secret_fields += ["webhook_secret_grace_hours", "clear_webhook_signing_secret"]
        if obj is not None and previous_secret_until(obj):
            secret_fields += ["previous_secret_display", "end_webhook_secret_grace"]
        key_fields = ["write_key_display"]
        if obj is not None and previous_key_until(obj):
            key_fields.append("previous_write_key_display")
        if obj is None:
            return [(None, {"fields": ["name", "slug", "enabled", *secret_fields]})]
        return [
            (None, {"fields": ["name", "slug", "enabled"]}),
            (
                "Write key",
                {
                    "fields": key_fields,
                    "description": "To replace the key, select the source in the list, "
                    "choose how long the old key stays valid, and run the “Rotate write key” "
                    "action.",
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

    @admin.display(description="previous write key")
    def previous_write_key_display(self, source: Source) -> str:
        until = previous_key_until(source)
        if until is None:
            return "—"
        return (
            f"msk_…{source.previous_write_key_hint}, still accepted until {_until(until)} "
            "(end it early with the “End the previous key's grace period” action)"
        )

    @admin.display(description="previous signing secret")
    def previous_secret_display(self, source: Source) -> str:
        until = previous_secret_until(source)
        return "—" if until is None else f"still accepted until {_until(until)}"

    @admin.display(description="webhook URL")
    def webhook_url(self, source: Source) -> str:
        # Replaced per request by get_list_display; kept so the admin checks see the column.
        return reverse("api:customerio_webhook", kwargs={"slug": source.slug})

    @admin.display(boolean=True, description="signing secret")
    def has_secret(self, source: Source) -> bool:
        return bool(source.webhook_signing_secret)

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        if change:
            form.apply_secret_change(obj)
            super().save_model(request, obj, form, change)
        else:
            _show_write_key_once(request, obj, source_save_new(source=obj))

    @admin.action(
        permissions=["change"],
        description="Rotate write key (the old key stays valid for the chosen time)",
    )
    def rotate_write_key(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        # The admin validated the action bar (a choice not offered runs no action); only its
        # value is read here.
        hours = SourceActionForm.base_fields["grace_hours"].clean(
            request.POST.get("grace_hours", "")
        )
        for source in queryset:
            try:
                write_key = source_rotate_write_key(source=source, grace=timedelta(hours=hours))
            except GraceInProgress as refused:
                self.message_user(request, f"Not rotated: {refused}.", messages.ERROR)
                continue
            until = previous_key_until(source)
            audit_record(
                action=AuditAction.KEY_ROTATED,
                request=request,
                target=source,
                detail={
                    "grace_hours": hours,
                    "previous_key_valid_until": until.isoformat() if until else None,
                },
            )
            _show_write_key_once(request, source, write_key)
            if until is not None:
                self.message_user(
                    request,
                    f"The old key of {source.name} (msk_…{source.previous_write_key_hint}) "
                    f"stays valid until {_until(until)}.",
                    messages.INFO,
                )

    @admin.action(
        permissions=["change"],
        description="End the previous key's grace period (the old key stops working now)",
    )
    def end_write_key_grace(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        ended = [source for source in queryset if source_end_write_key_grace(source=source)]
        audit_each(action=AuditAction.KEY_GRACE_ENDED, request=request, targets=ended)
        self.message_user(
            request,
            f"The previous write key stopped working for {len(ended)} source(s)."
            if ended
            else "None of the selected sources had a previous key still valid.",
            messages.SUCCESS if ended else messages.WARNING,
        )

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
    if name == "delivery_timeline":
        return event.delivery_id is not None
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
    readonly_fields = [
        "properties_json", "context_json", "raw_json", "delivery_timeline", *_MOMENT_FIELDS
    ]  # fmt: skip
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
                    "delivery_timeline",
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
        # On one line like the message id: the full id in the tooltip and on the detail page;
        # it opens the delivery's timeline on the dashboard.
        if not event.delivery_id:
            return "—"
        return format_html(
            '<a class="ms-id" href="{}" title="{}: its timeline">{}</a>',
            reverse("dashboard:delivery", args=[event.delivery_id]),
            event.delivery_id,
            event.delivery_id,
        )

    @admin.display(description="timeline")
    def delivery_timeline(self, event: Event) -> SafeString | str:
        if not event.delivery_id:
            return "—"
        return format_html(
            '<a href="{}">This delivery\'s events on the dashboard</a>',
            reverse("dashboard:delivery", args=[event.delivery_id]),
        )

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
