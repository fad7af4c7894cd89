"""Replay jobs in the admin: read-only, with their progress."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from metrics_source.forwarding.models import ReplayJob, ReplayScope, ReplayState
from metrics_source.runtime.admin_base import ReadOnlyAdmin


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
