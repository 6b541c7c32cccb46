"""The annotate app's configuration."""

from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Tandem annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Job kinds must be known to the web process (to create jobs) and the worker (to run them).
        from annotate import cascade, receivers  # noqa: F401  (the ORM's side of items' constraints; routing's signals)
        from annotate.services import exports, job_handlers, stats  # noqa: F401
