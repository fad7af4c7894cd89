from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from metrics_source.ingest.api import api

# API paths answer a 400 that Django raises itself (a Host not in ALLOWED_HOSTS) in JSON too.
handler400 = "metrics_source.runtime.error_views.bad_request"
# A 404 is JSON for API clients and the site's page, with its navigation, for people.
handler404 = "metrics_source.runtime.error_views.not_found"
# With the database unavailable, a 503 page (or JSON) with Retry-After instead of a bare 500.
handler500 = "metrics_source.runtime.error_views.server_error"

admin.site.site_header = "metrics-source"
admin.site.site_title = "metrics-source admin"

urlpatterns = [
    # The dashboard's few exact paths first (django-ninja answers "" itself when mounted at
    # the root), then the API, whose paths are resolved on every ingest request.
    path("", include("dashboard.urls")),
    path("", api.urls),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on every page, the admin's included.
    path("favicon.ico", RedirectView.as_view(url=static("metrics_source/favicon.svg"))),
]
