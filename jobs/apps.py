"""The job engine's configuration."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Tandem jobs"

    def ready(self) -> None:
        # The runner dispatches by task name: the tasks must be registered in every process that creates jobs.
        from jobs import tasks  # noqa: F401
