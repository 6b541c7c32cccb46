"""The routing app's configuration."""

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Tandem routing"

    def ready(self) -> None:
        # Registers the judge-run job handler in every process that runs jobs.
        from routing.judges import runs  # noqa: F401
