"""The routing app's configuration."""

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Tandem routing"

    def ready(self) -> None:
        # Registers routing's job handlers (routing passes, judge runs, the HyPER tagger) and the follow-ups
        # that chain passes and runs (`routing.chain`) in every process that runs jobs.
        from routing import chain, router  # noqa: F401
        from routing.judges import runs  # noqa: F401
        from routing.tagger import runs as tagger_runs  # noqa: F401
