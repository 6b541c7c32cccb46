"""Quality control pages: review (routes mounted from annotate/urls.py)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
