"""Dashboard pages: read the filters, build the page from selectors, render or download.

Every page is login-only, sends a Content-Security-Policy that allows no inline script, and
answers ``?download=<table>`` with that table as CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from dashboard.filters import Filters, filters_from_query
from dashboard.pages.backlog import stale_backlog
from dashboard.pages.campaign import campaign_page
from dashboard.pages.campaigns import campaigns_page
from dashboard.pages.channel import channel_page
from dashboard.pages.channels import channels_page
from dashboard.pages.deliveries import deliveries_page
from dashboard.pages.delivery import delivery_page
from dashboard.pages.filter_bar import filter_options
from dashboard.pages.overview import overview_page
from dashboard.pages.page import Page, csv_response
from dashboard.pages.person import person_page

# Scripts only from our own static files; Plotly sets element styles, hence 'unsafe-inline'
# for styles (never for scripts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

View = Callable[..., HttpResponse]


def dashboard_view(view: View) -> View:
    """Login required, and the page's Content-Security-Policy."""

    @login_required
    @never_cache  # Cache-Control: no-store: pages and CSVs hold personal data
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapped


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
        return csv_response(page.datasets[download], filename=filename)
    page.link_downloads(filters, **extra_query)
    context = {
        "page": page,
        "filters": filters,
        "options": filter_options(filters),
        "section": page.section,
        # The navigation keeps the period and basis when moving between pages.
        "nav_query": filters.query(channel=None, parent=None),
        "backlog": stale_backlog(),
        **page.context,
    }
    return render(request, template, context)


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/overview.html", overview_page(filters), filters, filename="overview"
    )


@dashboard_view
def channels(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/channels.html", channels_page(filters), filters, filename="channels"
    )


@dashboard_view
def channel(request: HttpRequest, channel: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = channel_page(filters, channel)  # Http404 for an unknown channel
    return render_page(request, "dashboard/channel.html", page, filters, filename=channel)


@dashboard_view
def campaigns(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    return render_page(
        request, "dashboard/campaigns.html", campaigns_page(filters), filters, filename="campaigns"
    )


@dashboard_view
def campaign(request: HttpRequest, kind: str, parent_id: int) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = campaign_page(filters, kind, parent_id)  # Http404 for one never seen
    return render_page(
        request, "dashboard/campaign.html", page, filters, filename=f"{kind}-{parent_id}"
    )


@dashboard_view
def deliveries(request: HttpRequest) -> HttpResponse:
    filters = filters_from_query(request.GET)
    extra = {key: request.GET[key] for key in ("q", "reached") if request.GET.get(key)}
    page = deliveries_page(filters, text=extra.get("q"), reached=extra.get("reached"))
    return render_page(
        request,
        "dashboard/deliveries.html",
        page,
        filters,
        filename="deliveries",
        extra_query=extra,
    )


@dashboard_view
def delivery(request: HttpRequest, delivery_id: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = delivery_page(delivery_id)  # Http404 for an unknown delivery
    return render_page(request, "dashboard/delivery.html", page, filters, filename="delivery")


@dashboard_view
def person(request: HttpRequest, person_id: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    page = person_page(person_id)
    return render_page(request, "dashboard/person.html", page, filters, filename="person")
