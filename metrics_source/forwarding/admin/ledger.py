"""The forwarding ledger in the admin, read-only: one row per (destination, event), and the
attempt log, one row per request."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction
from metrics_source.forwarding.models import Delivery, DeliveryAttempt
from metrics_source.forwarding.replay import deliveries_replay
from metrics_source.models import Event
from metrics_source.runtime.admin_base import ReadOnlyAdmin


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

    @admin.action(
        permissions=["change"], description="Replay selected (same messageId / webhook-id)"
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        by_destination: dict[int, list[int]] = {}
        for destination_id, pk in queryset.values_list("destination_id", "pk"):
            by_destination.setdefault(destination_id, []).append(pk)
        count = sum(
            deliveries_replay(destination_id=destination_id, delivery_ids=ids)
            for destination_id, ids in by_destination.items()
        )
        for destination_id, ids in by_destination.items():
            audit_record(
                action=AuditAction.REPLAY,
                request=request,
                target_type="metrics_source.destination",
                target_id=str(destination_id),
                detail={"deliveries": ids},
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
        "started", "destination", "outcome", "status_code", "duration", "size",
        "webhook_id", "error", "response_excerpt_short",
    ]  # fmt: skip
    list_filter = ["outcome", "destination", DeliveryFilter]
    list_select_related = ["destination"]
    show_full_result_count = False
    ordering = ["-started_at"]

    @admin.display(description="events")
    def size(self, attempt: DeliveryAttempt) -> int:
        return len(attempt.delivery_ids)

    @admin.display(description="started", ordering="started_at")
    def started(self, attempt: DeliveryAttempt) -> str:
        # To the second: "Dec. 4, 2026, 2:44 a.m." drops what tells attempts apart.
        return f"{timezone.localtime(attempt.started_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, attempt: DeliveryAttempt) -> str:
        """Whole milliseconds under ten seconds, else seconds to a tenth (not 3.7709329999)."""
        ms = float(attempt.duration_ms)
        return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"

    @admin.display(description="response")
    def response_excerpt_short(self, attempt: DeliveryAttempt) -> str:
        return attempt.response_excerpt[:200]
