"""`manage.py import_items CAMPAIGN FILE [--map field=column ...]`: import items, all or nothing, and print a JSON
report."""

from django.core.management.base import CommandError

from annotate.services.imports import MappingError, items_import, mapping_parse
from annotate.services.imports.mapping import TARGETS

from ._importing import ImportCommand


class Command(ImportCommand):
    help = "Import items (JSONL, JSON array, CSV or Parquet) into a campaign; nothing is written if any row is bad."
    importer = staticmethod(items_import)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=(
                "Read an item field from a column of another name, e.g. --map prompt=question "
                "--map response_a=answer1; repeat --map metadata=COLUMN for several metadata columns. "
                f"Fields: {', '.join(TARGETS)}."
            ),
        )

    def importer_options(self, opts) -> dict:
        try:
            mapping = mapping_parse(opts["map"])
        except MappingError as exc:
            raise CommandError(f"--map: {exc}") from exc
        return {"mapping": mapping} if mapping else {}
