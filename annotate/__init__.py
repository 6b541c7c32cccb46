"""Tandem's Django project and the annotation domain."""

from .celery import app as celery_app

__all__ = ["celery_app"]
