"""Admin for forwarding: destinations with their health, the ledger, the attempt log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from metrics_source.admin import ReadOnlyAdmin, WriteOnlySecretField, _copyable
from metrics_source.forwarding.destinations import destination_resume
from metrics_source.forwarding.fanout import destination_prepare_new
from metrics_source.forwarding.health import Health, destinations_health
from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    Destination,
    DestinationKind,
    ReplayJob,
    ReplayScope,
    ReplayState,
)
from metrics_source.forwarding.probe import destination_send_test
from metrics_source.forwarding.replay import deliveries_replay
from metrics_source.forwarding.replay_jobs import replay_job_create, replay_progress
from metrics_source.forwarding.signing import new_secret, secret_key
from metrics_source.forwarding.ssrf import UrlRefused, check_url
from metrics_source.models import Event
from metrics_source.runtime.wakeup import ingest_wakeup

FILTER_FIELDS = [
    "channels", "event_names", "sources", "campaign_ids", "broadcast_ids", "newsletter_ids",
    "transactional_message_ids",
]  # fmt: skip

# Headers the kinds set themselves; extra headers may not override them.
RESERVED_HEADERS = {
    "authorization",
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


class DestinationForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Destination._meta.get_field("url").help_text,
    )
    secret = WriteOnlySecretField(
        required=False,
        max_length=200,
        help_text="Webhook: the whsec_ signing secret (left blank on creation, one is generated "
        "and shown once). Segment-compatible: the write key. Never shown again after saving; "
        "leave blank to keep the current one.",
    )
    previous_secret = WriteOnlySecretField(
        required=False,
        max_length=200,
        label="Previous signing secret",
        help_text="During a rotation requests are signed with both secrets.",
    )
    clear_previous_secret = forms.BooleanField(required=False, label="Remove the previous secret")

    class Meta:
        model = Destination
        fields = [
            "name", "kind", "enabled", "url", "secret", "previous_secret", "extra_headers",
            "channels", "event_names", "sources", "campaign_ids", "broadcast_ids",
            "newsletter_ids", "transactional_message_ids", "batch_size", "timeout_seconds",
            "max_requests_per_second", "backfill_from",
        ]  # fmt: skip
        labels = {"url": "URL"}

    def _kept(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        return value or (getattr(self.instance, name) if self.instance.pk else "")

    def clean_secret(self) -> str:
        return self._kept("secret")

    def clean_previous_secret(self) -> str:
        return self._kept("previous_secret")

    def clean_timeout_seconds(self) -> float:
        value = self.cleaned_data["timeout_seconds"]
        if not 0.5 <= value <= 60:
            raise forms.ValidationError("Between 0.5 and 60 seconds.")
        return value

    def clean_extra_headers(self) -> dict:
        headers = self.cleaned_data.get("extra_headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise forms.ValidationError('A JSON object of strings, e.g. {"X-Team": "growth"}.')
        reserved = sorted(k for k in headers if k.lower() in RESERVED_HEADERS)
        if reserved:
            raise forms.ValidationError(f"Set by the destination kind: {', '.join(reserved)}.")
        return headers

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_previous_secret"):
            cleaned["previous_secret"] = ""
        kind, url = cleaned.get("kind"), cleaned.get("url")
        if kind and url:
            try:
                check_url(KINDS[kind].url_to_check(Destination(kind=kind, url=url)))
            except UrlRefused as error:
                self.add_error("url", str(error))
        if kind == DestinationKind.WEBHOOK:
            for name in ("secret", "previous_secret"):
                if cleaned.get(name):
                    try:
                        secret_key(cleaned[name])
                    except ValueError as error:
                        self.add_error(name, str(error))
        elif kind == DestinationKind.SEGMENT and not cleaned.get("secret"):
            self.add_error("secret", "A Segment-compatible destination needs its write key.")
        return cleaned


def _health(request: HttpRequest, destination: Destination) -> Health:
    cache = getattr(request, "_forwarding_health", None)
    return cache.get(destination.pk, Health()) if cache else Health()


_SHORT_KIND_LABELS = {"webhook": "Webhook", "segment": "Segment API"}


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = [
        "name", "kind_label", "enabled", "paused", "delivered_24h", "failed_24h", "success_rate",
        "backlog", "oldest_pending", "p95", "last_error", "ledger", "replay",
    ]  # fmt: skip
    list_filter = ["kind", "enabled", "paused"]
    search_fields = ["name", "url"]
    readonly_fields = ["paused", "pause_reason", "failing_since", "created_at"]
    filter_horizontal = ["sources"]
    actions = ["send_test_event", "resume", "pause", "replay_dead", "replay_range"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Health for every destination in three grouped queries, read by the columns below.
        ids = list(Destination.objects.values_list("pk", flat=True))
        request._forwarding_health = destinations_health(ids)  # type: ignore[attr-defined]
        request._replays = replay_progress(ids)  # type: ignore[attr-defined]
        return super().changelist_view(request, extra_context)

    def get_list_display(self, request: HttpRequest) -> Any:
        def column(name: str, description: str, render):
            @admin.display(description=description)
            def show(destination: Destination):
                return render(_health(request, destination))

            show.__name__ = name
            return show

        columns = {
            "delivered_24h": column("delivered_24h", "delivered 24 h", lambda h: h.delivered_24h),
            "failed_24h": column("failed_24h", "failed 24 h", lambda h: h.failed_24h),
            "success_rate": column(
                "success_rate",
                "success 24 h",
                lambda h: "—" if h.success_rate is None else f"{h.success_rate:.1%}",
            ),
            "backlog": column("backlog", "backlog", lambda h: h.backlog),
            "oldest_pending": column(
                "oldest_pending", "oldest pending", lambda h: h.oldest_pending or "—"
            ),
            "p95": column(
                "p95", "p95 latency", lambda h: "—" if h.p95_ms is None else f"{h.p95_ms:.0f} ms"
            ),
            "last_error": column("last_error", "last error", lambda h: h.last_error[:120] or "—"),
        }

        @admin.display(description="replay")
        def replay(destination: Destination) -> str:
            job = getattr(request, "_replays", {}).get(destination.pk)
            if job is None:
                return "—"
            url = reverse("admin:metrics_source_replayjob_changelist")
            return format_html(
                '<a href="{}?destination__id__exact={}">{}</a>',
                url,
                destination.pk,
                replay_progress_html(job),
            )

        columns["replay"] = replay
        return [columns.get(name, name) if isinstance(name, str) else name
                for name in self.list_display]  # fmt: skip

    # Placeholders for the admin's checks; get_list_display binds the real ones per request.
    def delivered_24h(self, obj: Destination) -> str:
        return ""

    failed_24h = success_rate = backlog = oldest_pending = p95 = last_error = delivered_24h

    @admin.display(description="kind", ordering="kind")
    def kind_label(self, destination: Destination) -> str:
        # The choice labels explain the kinds on the form; the list needs a short word.
        return _SHORT_KIND_LABELS.get(destination.kind, destination.kind)

    @admin.display(description="ledger")
    def ledger(self, destination: Destination) -> str:
        url = reverse("admin:metrics_source_delivery_changelist")
        return format_html('<a href="{}?destination__id__exact={}">ledger</a>', url, destination.pk)

    # get_list_display binds the request's replays; this placeholder serves the admin's checks.
    def replay(self, destination: Destination) -> str:
        return ""

    def get_fieldsets(self, request: HttpRequest, obj: Destination | None = None) -> Any:
        secrets = ["secret", "previous_secret"]
        if obj is not None and obj.previous_secret:
            secrets.append("clear_previous_secret")
        fieldsets: list = [
            (None, {"fields": ["name", "kind", "enabled", "url", *secrets, "extra_headers"]}),
            (
                "Which events (empty: all; parent ids: any one matches)",
                {"fields": FILTER_FIELDS},
            ),
            (
                "Sending",
                {"fields": ["batch_size", "timeout_seconds", "max_requests_per_second"]},
            ),
        ]
        if obj is None:
            fieldsets.append(("History", {"fields": ["backfill_from"]}))
        else:
            fieldsets.append(
                ("State", {"fields": ["paused", "pause_reason", "failing_since", "created_at"]})
            )
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Destination, form: Any, change: bool) -> None:
        generated = None
        if not change:
            destination_prepare_new(obj)
            if obj.kind == DestinationKind.WEBHOOK and not obj.secret:
                obj.secret = generated = new_secret()
        super().save_model(request, obj, form, change)
        if generated:
            messages.warning(
                request,
                format_html(
                    "Signing secret for <strong>{}</strong>: {} Give it to the receiver now; "
                    "it will not be shown again.",
                    obj.name,
                    _copyable(generated),
                ),
            )

    @admin.action(description="Send a test event and show the answer")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            try:
                probe = destination_send_test(destination)
            except UrlRefused as error:
                messages.error(request, f"{destination.name}: refused: {error}")
                continue
            answer = f"HTTP {probe.result.status}" if probe.result.status else probe.result.error
            level = (
                messages.SUCCESS
                if probe.verdict.outcome == AttemptOutcome.DELIVERED
                else messages.ERROR
            )
            messages.add_message(
                request,
                level,
                f"{destination.name}: {answer} in {probe.result.duration_ms:.0f} ms "
                f"(messageId {probe.message_id}). {probe.result.excerpt[:300]}",
            )

    @admin.action(description="Resume (the backlog is sent again)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            destination_resume(destination.pk)
        messages.success(request, f"{queryset.count()} destination(s) resumed.")

    @admin.action(description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        queryset.update(paused=True, pause_reason=f"Paused by {request.user}.")

    @admin.action(description="Replay everything dead (in the background)")
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[Destination]) -> HttpResponse:
        return self._start_replays(request, queryset, scope=ReplayScope.DEAD)

    @admin.action(description="Replay a time range or everything matching the filters…")
    def replay_range(
        self, request: HttpRequest, queryset: QuerySet[Destination]
    ) -> HttpResponse | None:
        form = ReplayRangeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            return self._start_replays(
                request,
                queryset,
                scope=ReplayScope.EVENTS,
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
            )
        return TemplateResponse(
            request,
            "admin/metrics_source/replay_range.html",
            {
                **self.admin_site.each_context(request),
                "title": "Replay a time range",
                "form": form,
                "destinations": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    def _start_replays(
        self, request: HttpRequest, queryset: QuerySet[Destination], **job: Any
    ) -> HttpResponse:
        """Replays of unknown size run in Celery tasks, not in the request; the replay list
        shows their progress."""
        with transaction.atomic():
            jobs = [
                replay_job_create(
                    destination_id=destination.pk, requested_by=request.user.get_username(), **job
                )
                for destination in queryset
            ]
            # The sweep starts the tasks; the nudge only saves waiting for its next run.
            transaction.on_commit(ingest_wakeup)
        messages.success(
            request,
            f"{len(jobs)} replay(s) started in the background; this page shows their progress.",
        )
        return HttpResponseRedirect(reverse("admin:metrics_source_replayjob_changelist"))


class ReplayRangeForm(forms.Form):
    since = forms.DateTimeField(
        required=False,
        help_text="Events at or after this time (server time zone); blank: from the first.",
    )
    until = forms.DateTimeField(
        required=False, help_text="Events before this time; blank: up to now."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since: datetime | None = cleaned.get("since")
        until: datetime | None = cleaned.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("The start must be before the end.")
        return cleaned


class EventTimeFilter(admin.DateFieldListFilter):
    """The ledger by its events' time (beside the rows' own creation time).

    The events table has no timestamp index (summaries serve the charts; every index costs
    each insert), so a join the planner may turn into a scan of all events is avoided: the
    test is a scalar subquery per ledger row, an event looked up by its primary key through
    the row's event_id. The ledger is read newest first and the page stops after a page of
    matches, so the cost follows the ledger rows read, never the size of the events table."""

    def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any,
                 model_admin: Any, field_path: str) -> None:  # fmt: skip
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "event time"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        since = self.used_parameters.get(self.lookup_kwarg_since)
        until = self.used_parameters.get(self.lookup_kwarg_until)
        # Django 5 hands list filter parameters over as lists.
        since = since[-1] if isinstance(since, list) else since
        until = until[-1] if isinstance(until, list) else until
        if not since and not until:
            return queryset
        inside = Q()
        if since:
            inside &= Q(timestamp__gte=since)
        if until:
            inside &= Q(timestamp__lt=until)
        in_range = Subquery(
            Event.objects.filter(pk=OuterRef("event_id"))
            .annotate(in_range=ExpressionWrapper(inside, output_field=BooleanField()))
            .values("in_range"),
            output_field=BooleanField(),
        )
        return queryset.alias(event_in_range=in_range).filter(event_in_range=True)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "destination", "event_link", "status", "attempts", "next_attempt_at",
        "delivered_at", "last_error_short", "attempts_link",
    ]  # fmt: skip
    list_filter = [
        "status",
        "destination",
        ("created_at", admin.DateFieldListFilter),
        ("event__timestamp", EventTimeFilter),
    ]
    list_select_related = ["destination", "event"]
    # Counting a large ledger on every page would cost more than the page itself.
    show_full_result_count = False
    ordering = ["-id"]
    actions = ["replay"]

    @admin.display(description="event")
    def event_link(self, delivery: Delivery) -> str:
        url = reverse("admin:metrics_source_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event.message_id)

    @admin.display(description="last error")
    def last_error_short(self, delivery: Delivery) -> str:
        return delivery.last_error[:120]

    @admin.display(description="attempts")
    def attempts_link(self, delivery: Delivery) -> str:
        url = reverse("admin:metrics_source_deliveryattempt_changelist")
        return format_html(
            '<a href="{}?destination__id__exact={}&delivery={}">attempts</a>',
            url,
            delivery.destination_id,
            delivery.pk,
        )

    @admin.action(description="Replay selected (same messageId / webhook-id)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        by_destination: dict[int, list[int]] = {}
        for destination_id, pk in queryset.values_list("destination_id", "pk"):
            by_destination.setdefault(destination_id, []).append(pk)
        count = sum(
            deliveries_replay(destination_id=destination_id, delivery_ids=ids)
            for destination_id, ids in by_destination.items()
        )
        messages.success(request, f"{count} deliveries are pending again.")

    # The admin must have the change permission to run actions; rows stay read-only.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.has_perm("metrics_source.change_delivery")


class DeliveryFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list:
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(delivery_ids__contains=[int(value)])
        return queryset


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at", "destination", "outcome", "status_code", "duration_ms", "size",
        "webhook_id", "error", "response_excerpt_short",
    ]  # fmt: skip
    list_filter = ["outcome", "destination", DeliveryFilter]
    list_select_related = ["destination"]
    show_full_result_count = False
    ordering = ["-started_at"]

    @admin.display(description="events")
    def size(self, attempt: DeliveryAttempt) -> int:
        return len(attempt.delivery_ids)

    @admin.display(description="response")
    def response_excerpt_short(self, attempt: DeliveryAttempt) -> str:
        return attempt.response_excerpt[:200]


def replay_progress_html(job: ReplayJob) -> str:
    """done / total, percent and a <progress> bar (no script, no style: it works under CSP)."""
    if job.total is None:
        return format_html("{}…", job.get_state_display())
    percent = job.percent or 0.0
    return format_html(
        '<progress value="{}" max="100">{}%</progress> {} of {} ({}%) · {}',
        f"{percent:.1f}",
        f"{percent:.0f}",
        f"{job.done:,}",
        f"{job.total:,}",
        f"{percent:.0f}",
        job.get_state_display(),
    )


@admin.register(ReplayJob)
class ReplayJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "destination", "what", "progress", "replayed", "requested_by", "created_at",
        "started_at", "finished_at", "last_error_short",
    ]  # fmt: skip
    list_filter = ["state", "destination"]
    list_select_related = ["destination"]
    ordering = ["-id"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The page reloads itself (a <meta> refresh, no script) while a replay is unfinished.
        running = ReplayJob.objects.filter(
            state__in=[ReplayState.QUEUED, ReplayState.RUNNING]
        ).exists()
        context = {**(extra_context or {}), "replays_running": running}
        return super().changelist_view(request, context)

    @admin.display(description="what")
    def what(self, job: ReplayJob) -> str:
        if job.scope == ReplayScope.DEAD:
            return "everything dead"
        if job.since is None and job.until is None:
            return "every event matching the filters"
        since = f"{job.since:%Y-%m-%d %H:%M}" if job.since else "the first event"
        until = f"{job.until:%Y-%m-%d %H:%M}" if job.until else "now"
        return f"events from {since} to {until}"

    @admin.display(description="progress")
    def progress(self, job: ReplayJob) -> str:
        return replay_progress_html(job)

    @admin.display(description="last error")
    def last_error_short(self, job: ReplayJob) -> str:
        return job.last_error[:200] or "—"
