"""The routing app's configuration."""

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Tandem routing"

    def ready(self) -> None:
        # Registers the judge-run and routing-pass job handlers in every process that runs jobs.
        from routing import router  # noqa: F401
        from routing.judges import runs  # noqa: F401
