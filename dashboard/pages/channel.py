"""One channel: its funnel, rates over time and failures; and the list of channels."""

from __future__ import annotations

from django.http import Http404

from dashboard.filters import Filters
from dashboard.pages.common import Page


def channels_page(filters: Filters) -> Page:
    return Page(title="Channels", section="channels")


def channel_page(filters: Filters, channel: str) -> Page:
    raise Http404("not built yet")
