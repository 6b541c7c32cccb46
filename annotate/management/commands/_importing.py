"""What import_items and import_annotations share: argument parsing, reporting, exit status."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from annotate.services.campaigns import campaign_get
from annotate.services.imports import ImportFailed
from annotate.services.imports.readers import FORMATS


class ImportCommand(BaseCommand):
    importer = None  # set by subclasses: a service taking campaign, stream, filename, fmt

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument("file", help="JSONL, JSON array, CSV or Parquet; '-' reads standard input.")
        parser.add_argument("--format", choices=FORMATS, help="Override the format guessed from the file name.")

    def importer_options(self, opts) -> dict:
        """Further keyword arguments for the importer from a subclass's own options."""
        return {}

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        path = opts["file"]
        extra = self.importer_options(opts)
        try:
            if path == "-":
                stream, filename = sys.stdin.buffer, "<stdin>"
                report = type(self).importer(
                    campaign=campaign, stream=_seekable(stream), filename=filename, fmt=opts["format"], **extra
                )
            else:
                with Path(path).open("rb") as stream:
                    report = type(self).importer(
                        campaign=campaign, stream=stream, filename=path, fmt=opts["format"], **extra
                    )
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except ImportFailed as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(report.as_dict()))
        for conflict in report.conflicts:
            fields = ", ".join(conflict["fields"])
            self.stderr.write(f"{path}, {conflict['where']}: id {conflict['id']!r}: {conflict['message']} ({fields})")


def _seekable(stream):
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    while chunk := stream.read(1 << 20):
        spool.write(chunk)
    spool.seek(0)
    return spool
