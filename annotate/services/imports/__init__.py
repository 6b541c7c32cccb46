"""Imports of items and of existing labels: one service each, shared by the commands and the API."""

from .annotations import annotations_import
from .errors import ImportFailed, RowError
from .items import ImportReport, items_import

__all__ = ["ImportFailed", "ImportReport", "RowError", "annotations_import", "items_import"]
