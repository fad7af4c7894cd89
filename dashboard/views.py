"""Dashboard pages: read the filters, build the page from selectors, render or download.

Every page is login-only, declares the permission it needs (``dashboard_view(needs=...)``;
a signed-in account without it gets the "no access" page), and answers ``?download=<table>``
with that table as CSV for accounts that may export. Downloads and person pages go in the
audit log. The Content-Security-Policy is the site's (metrics_source/runtime/middleware.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from dashboard.filters import Filters, filters_from_query
from dashboard.pages.backlog import stale_backlog
from dashboard.pages.campaign import campaign_detail, campaign_page
from dashboard.pages.campaigns import campaigns_page
from dashboard.pages.channel import channel_page
from dashboard.pages.channels import channels_page
from dashboard.pages.deliveries import deliveries_export, deliveries_page
from dashboard.pages.delivery import delivery_page
from dashboard.pages.filter_bar import filter_options
from dashboard.pages.overview import overview_page
from dashboard.pages.page import Page, csv_response
from dashboard.pages.person import person_page
from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction
from metrics_source.access.permissions import EXPORT_CSV, VIEW_DASHBOARD, VIEW_PERSONAL_DATA

View = Callable[..., HttpResponseBase]


def no_access(request: HttpRequest, needs: str) -> HttpResponse:
    """A signed-in account whose roles do not include ``needs``: a page that says so."""
    context = {"needs": needs, "section": "", "nav_query": ""}
    return render(request, "dashboard/no_access.html", context, status=403)


def dashboard_view(*, needs: str) -> Callable[[View], View]:
    """Login required and the permission ``needs`` (and ``EXPORT_CSV`` for a download); the
    site's Content-Security-Policy comes from its middleware. The permission is kept on the
    view as ``required_permission`` for the role matrix test to read."""

    def decorate(view: View) -> View:
        @login_required
        @never_cache  # Cache-Control: no-store: pages and CSVs hold personal data
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response: HttpResponseBase
            if not request.user.has_perm(needs):
                response = no_access(request, needs)
            elif request.GET.get("download") and not request.user.has_perm(EXPORT_CSV):
                response = no_access(request, EXPORT_CSV)
            else:
                response = view(request, *args, **kwargs)
            return response

        wrapped.required_permission = needs  # type: ignore[attr-defined]
        return wrapped

    return decorate


def audit_download(request: HttpRequest, table: str) -> None:
    audit_record(
        action=AuditAction.CSV_EXPORT,
        request=request,
        target_type="page",
        target_id=request.path,
        detail={"table": table, "query": request.GET.urlencode()},
    )


def render_page(
    request: HttpRequest,
    template: str,
    page: Page,
    filters: Filters,
    *,
    filename: str,
    extra_query: dict[str, str] | None = None,
) -> HttpResponse:
    extra_query = extra_query or {}
    if download := request.GET.get("download"):
        if download not in page.datasets:
            raise Http404("no such table on this page")
        audit_download(request, download)
        return csv_response(page.datasets[download], filename=filename)
    page.link_downloads(filters, **extra_query)
    context = {
        "page": page,
        "filters": filters,
        "options": filter_options(filters),
        "section": page.section,
        # The navigation keeps the period and basis when moving between pages (a message's
        # lifetime is that page's own: the others get their default period).
        "nav_query": filters.query(
            channel=None,
            parent=None,
            **({"period": None, "interval": None} if filters.lifetime else {}),
        ),
        "backlog": stale_backlog(),
        **page.context,
    }
    return render(request, template, context)


@dashboard_view(needs=VIEW_DASHBOARD)
def overview(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/overview.html", overview_page(filters), filters, filename="overview"
    )


@dashboard_view(needs=VIEW_DASHBOARD)
def channels(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/channels.html", channels_page(filters), filters, filename="channels"
    )


@dashboard_view(needs=VIEW_DASHBOARD)
def channel(request: HttpRequest, channel: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = channel_page(filters, channel)  # Http404 for an unknown channel
    return render_page(request, "dashboard/channel.html", page, filters, filename=channel)


@dashboard_view(needs=VIEW_DASHBOARD)
def campaigns(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/campaigns.html", campaigns_page(filters), filters, filename="campaigns"
    )


@dashboard_view(needs=VIEW_DASHBOARD)
def campaign(request: HttpRequest, kind: str, parent_id: int) -> HttpResponse:
    detail = campaign_detail(kind, parent_id)  # Http404 for one never seen
    filters = filters_from_query(request.GET, lifetime=(detail["first_seen"], detail["last_seen"]))
    page = campaign_page(filters, detail)
    return render_page(
        request, "dashboard/campaign.html", page, filters, filename=f"{kind}-{parent_id}"
    )


@dashboard_view(needs=VIEW_PERSONAL_DATA)
def deliveries(request: HttpRequest) -> HttpResponseBase:
    filters = filters_from_query(request.GET)
    extra = {key: request.GET[key] for key in ("q", "reached") if request.GET.get(key)}
    if request.GET.get("download") == "deliveries" and not extra.get("q"):
        # Every row of the list, not only the page shown: streamed from the database.
        audit_download(request, "deliveries")
        return deliveries_export(filters, reached=extra.get("reached"))
    number = request.GET.get("page", "1")
    page = deliveries_page(
        filters,
        text=extra.get("q"),
        reached=extra.get("reached"),
        page_number=int(number) if number.isdigit() and len(number) < 9 else 1,
    )
    return render_page(
        request,
        "dashboard/deliveries.html",
        page,
        filters,
        filename="deliveries",
        extra_query=extra,
    )


@dashboard_view(needs=VIEW_PERSONAL_DATA)
def delivery(request: HttpRequest, delivery_id: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = delivery_page(delivery_id)  # Http404 for an unknown delivery
    return render_page(request, "dashboard/delivery.html", page, filters, filename="delivery")


@dashboard_view(needs=VIEW_PERSONAL_DATA)
def person(request: HttpRequest, person_id: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = person_page(person_id)
    audit_record(
        action=AuditAction.PERSON_VIEWED,
        request=request,
        target_type="person",
        target_id=person_id[:255],
    )
    return render_page(request, "dashboard/person.html", page, filters, filename="person")
