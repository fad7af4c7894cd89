"""Dashboard pages. The charts arrive with the dashboard issue; for now the home page points
at the places that already work (API docs, admin, health)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.selectors import event_totals


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"totals": event_totals()})
