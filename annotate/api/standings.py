"""Quality control API: standings (routes mounted from annotate/api/urls.py)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
