"""Deliveries: search, the deliveries behind a funnel step, one delivery's timeline, and one
person's deliveries."""

from __future__ import annotations

from django.http import Http404

from dashboard.filters import Filters
from dashboard.pages.common import Page


def deliveries_page(filters: Filters, *, text: str | None, reached: str | None) -> Page:
    return Page(title="Deliveries", section="deliveries")


def delivery_page(delivery_id: str) -> Page:
    raise Http404("not built yet")


def person_page(person_id: str) -> Page:
    raise Http404("not built yet")
