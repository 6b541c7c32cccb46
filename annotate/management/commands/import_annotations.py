"""`manage.py import_annotations CAMPAIGN FILE`: import existing human or judge labels."""

from annotate.services.imports import annotations_import

from ._importing import ImportCommand


class Command(ImportCommand):
    help = "Import labels a team already has (human or judge); nothing is written if any row is bad."
    importer = staticmethod(annotations_import)
