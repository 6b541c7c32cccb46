"""Fixtures of the job engine's tests."""

import pytest

from jobs import registry


@pytest.fixture
def handlers():
    """Register throwaway handlers for the test and remove them afterwards."""
    added = []

    def register(kind, func):
        registry.job_handler(kind)(func)
        added.append(kind)

    yield register
    for kind in added:
        registry._HANDLERS.pop(kind, None)
