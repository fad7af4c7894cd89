"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

from metrics_source.runtime.console import quiet_routine_lines

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metrics_source.settings")

app = Celery("metrics_source")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker's and beat's per-task lines at DEBUG, not INFO (metrics_source.runtime.console).
quiet_routine_lines()
