"""`manage.py import_items CAMPAIGN FILE`: import items, all or nothing, and print a JSON report."""

from annotate.services.imports import items_import

from ._importing import ImportCommand


class Command(ImportCommand):
    help = "Import items (JSONL, JSON array, CSV or Parquet) into a campaign; nothing is written if any row is bad."
    importer = staticmethod(items_import)
