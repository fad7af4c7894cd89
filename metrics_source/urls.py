from django.contrib import admin
from django.urls import include, path

from metrics_source.api import api

admin.site.site_header = "metrics-source"
admin.site.site_title = "metrics-source admin"

urlpatterns = [
    # The API first: its paths are the hot ones and are resolved on every ingest request.
    path("", api.urls),
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls")),
]
