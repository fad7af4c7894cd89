import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metrics_source.settings")
# What django.core.wsgi.get_wsgi_application does, with the project's handler: it serves the
# ingest endpoints (tracking API and webhooks) without the middleware chain (fast_path).
django.setup(set_prefix=False)

from metrics_source.ingest.fast_path import MetricsSourceWSGIHandler  # noqa: E402 (needs setup)

application = MetricsSourceWSGIHandler()
