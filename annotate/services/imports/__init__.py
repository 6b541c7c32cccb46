"""Imports of items and of existing labels: one service each, shared by the commands and the API."""

from .annotations import annotations_import
from .errors import ImportFailed, RowError
from .items import ImportReport, items_import
from .mapping import MappingError, mapping_parse
from .preview import Preview, items_preview

__all__ = [
    "ImportFailed",
    "ImportReport",
    "MappingError",
    "Preview",
    "RowError",
    "annotations_import",
    "items_import",
    "items_preview",
    "mapping_parse",
]
