from django.apps import AppConfig


class MetricsSourceConfig(AppConfig):
    name = "metrics_source"
    verbose_name = "Metrics source"

    def ready(self) -> None:
        from metrics_source.access import signals

        signals.connect(self)
