"""The Celery application: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("tandem")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _broker_polling(sender, **kwargs):
    """The embedded broker's poll period (kombu's default is 1 s; its transport options go to SQLAlchemy)."""
    from django.conf import settings
    from kombu.transport.sqlalchemy import Transport

    Transport.polling_interval = settings.TANDEM_BROKER_POLL_SECONDS


app.autodiscover_tasks(["jobs", "annotate", "routing"])
