from django.apps import AppConfig


class MetricsSourceConfig(AppConfig):
    name = "metrics_source"
    verbose_name = "Metrics source"
