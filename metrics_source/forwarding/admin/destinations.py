"""Destinations in the admin: their health in the list, and the actions (test event, pause,
resume, replays)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction
from metrics_source.forwarding.admin.forms import FILTER_FIELDS, DestinationForm, ReplayRangeForm
from metrics_source.forwarding.admin.replays import replay_progress_html
from metrics_source.forwarding.destinations import (
    destination_pause,
    destination_resume,
    destination_save_new,
)
from metrics_source.forwarding.health import Health, destinations_health
from metrics_source.forwarding.models import (
    AttemptOutcome,
    Destination,
    DestinationKind,
    ReplayScope,
)
from metrics_source.forwarding.probe import destination_send_test
from metrics_source.forwarding.replay_jobs import replay_job_create, replay_progress
from metrics_source.forwarding.ssrf import UrlRefused
from metrics_source.runtime.admin_base import AuditedAdmin, copyable
from metrics_source.runtime.wakeup import ingest_wakeup


def _job_detail(job: dict[str, Any]) -> dict[str, str]:
    """A replay's scope and range as the audit log keeps them (text, not datetimes)."""
    return {key: str(value) for key, value in job.items() if value is not None}


def _health(request: HttpRequest, destination: Destination) -> Health:
    cache = getattr(request, "_forwarding_health", None)
    return cache.get(destination.pk, Health()) if cache else Health()


_SHORT_KIND_LABELS = {"webhook": "Webhook", "segment": "Segment API"}


@admin.register(Destination)
class DestinationAdmin(AuditedAdmin):
    form = DestinationForm
    list_display = [
        "name", "kind_label", "enabled", "paused", "delivered_24h", "failed_24h", "success_rate",
        "backlog", "oldest_pending", "p95", "last_error", "ledger", "replay",
    ]  # fmt: skip
    list_filter = ["kind", "enabled", "paused"]
    search_fields = ["name", "url"]
    readonly_fields = [
        "paused", "pause_reason", "failing_since", "created_at", "extra_header_names",
    ]  # fmt: skip
    filter_horizontal = ["sources"]
    # Each action changes state: it needs the change permission (view-only staff see none).
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

    @admin.display(description="extra headers")
    def extra_header_names(self, destination: Destination) -> str:
        names = sorted(destination.extra_headers or {})
        return ", ".join(names) + " (values hidden)" if names else "—"

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
        # Who may only view sees the header names, never their values.
        headers = (
            "extra_headers" if self.has_change_permission(request, obj) else "extra_header_names"
        )
        fieldsets: list = [
            (None, {"fields": ["name", "kind", "enabled", "url", *secrets, headers]}),
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
        if change:
            super().save_model(request, obj, form, change)
            return
        # The service the commands use: the same checks, the generated secret, the fan-out floor.
        destination_save_new(obj)
        if obj.kind == DestinationKind.WEBHOOK and not form.cleaned_data.get("secret"):
            messages.warning(
                request,
                format_html(
                    "Signing secret for <strong>{}</strong>: {} Give it to the receiver now; "
                    "it will not be shown again.",
                    obj.name,
                    copyable(obj.secret),
                ),
            )

    @admin.action(permissions=["change"], description="Send a test event and show the answer")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            audit_record(action=AuditAction.TEST_EVENT, request=request, target=destination)
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

    @admin.action(permissions=["change"], description="Resume (the backlog is sent again)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            destination_resume(destination.pk)
            audit_record(
                action=AuditAction.DESTINATION_RESUMED, request=request, target=destination
            )
        messages.success(request, f"{queryset.count()} destination(s) resumed.")

    @admin.action(permissions=["change"], description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        for destination in queryset:
            destination_pause(destination.pk, reason=f"Paused by {request.user}.")
            audit_record(action=AuditAction.DESTINATION_PAUSED, request=request, target=destination)
        messages.success(request, f"{queryset.count()} destination(s) paused.")

    @admin.action(permissions=["change"], description="Replay everything dead (in the background)")
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[Destination]) -> HttpResponse:
        return self._start_replays(request, queryset, scope=ReplayScope.DEAD)

    @admin.action(
        permissions=["change"],
        description="Replay a time range or everything matching the filters…",
    )
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
            for replay in jobs:
                audit_record(
                    action=AuditAction.REPLAY,
                    request=request,
                    target=replay.destination,
                    detail={"replay_job": replay.pk, **_job_detail(job)},
                )
            # The sweep starts the tasks; the nudge only saves waiting for its next run.
            transaction.on_commit(ingest_wakeup)
        messages.success(
            request,
            f"{len(jobs)} replay(s) started in the background; this page shows their progress.",
        )
        return HttpResponseRedirect(reverse("admin:metrics_source_replayjob_changelist"))
