"""Campaigns, broadcasts, newsletters and transactional messages: the list and one's detail."""

from __future__ import annotations

from django.http import Http404

from dashboard.filters import Filters
from dashboard.pages.common import Page


def campaigns_page(filters: Filters) -> Page:
    return Page(title="Campaigns", section="campaigns")


def campaign_page(filters: Filters, kind: str, parent_id: int) -> Page:
    raise Http404("not built yet")
