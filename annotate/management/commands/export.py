"""`manage.py export CAMPAIGN --format F --out FILE.jsonl|.parquet|.csv [options]`: write a dataset and its card."""

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.exports.build import (
    ExportCounts,
    aggregation_summary,
    export_columns,
    export_rows,
    export_winners,
    export_write,
)
from annotate.exports.card import dataset_card
from annotate.exports.options import AGGREGATIONS, FORMATS, SOURCES, TIES, ExportOptions, ExportOptionsError
from annotate.models import Campaign, Item
from annotate.services.campaigns import campaign_get
from annotate.services.exports import _facts, items_with_labels

FILE_TYPES = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}


class Command(BaseCommand):
    help = (
        "Export a campaign's labels as a training-ready dataset. The train split goes to FILE; other splits "
        "(ties, test) beside it as <stem>.<split>.<ext>; the dataset card as <stem>.README.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="FILE.jsonl, FILE.parquet or FILE.csv")
        parser.add_argument("--source", choices=SOURCES, default="hybrid")
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--ties", choices=TIES, default="split")
        parser.add_argument("--test-fraction", type=float, default=0.0)
        parser.add_argument(
            "--aggregation", choices=AGGREGATIONS, default="majority", help="how the final pairwise label is decided"
        )
        parser.add_argument(
            "--soft-labels", action="store_true", help="add the counted labels' vote distribution as a column"
        )
        parser.add_argument("--metadata", action="append", default=[], help="key=value: keep matching items")
        parser.add_argument("--from", dest="created_from", help="labels created at or after (ISO date/time)")
        parser.add_argument("--to", dest="created_to", help="labels created before (ISO date/time)")

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        out: Path = opts["out"]
        file_type = FILE_TYPES.get(out.suffix)
        if file_type is None:
            raise CommandError(f"--out: {out.name!r} must end in .jsonl, .parquet or .csv")
        metadata: dict[str, list[str]] = {}
        for pair in opts["metadata"]:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--metadata: {pair!r} is not key=value")
            metadata.setdefault(key, []).append(value)
        try:
            options = ExportOptions(
                format=opts["format"], file_type=file_type, source=opts["source"],
                min_agreement=opts["min_agreement"], ties=opts["ties"], test_fraction=opts["test_fraction"],
                metadata=metadata, created_from=opts["created_from"], created_to=opts["created_to"],
                aggregation=opts["aggregation"], soft_labels=opts["soft_labels"],
            )  # fmt: skip
        except ExportOptionsError as exc:
            raise CommandError(f"--{str(exc).replace('_', '-')}") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        facts, agreement = _facts(campaign)
        conversational = Item.objects.filter(campaign=campaign, prompt__0__role__isnull=False).exists()
        try:
            columns = export_columns(
                schema=campaign.label_schema, kind=campaign.kind, options=options, conversational=conversational
            )
        except ExportOptionsError as exc:
            raise CommandError(f"--{str(exc).replace('_', '-')}") from exc
        counts = ExportCounts()
        try:
            pairs, winners = export_winners(
                lambda: items_with_labels(campaign=campaign), schema=campaign.label_schema, kind=campaign.kind,
                options=options,
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        rows = export_rows(
            pairs, winners=winners, schema=campaign.label_schema, kind=campaign.kind, options=options,
            conversational=conversational, counts=counts,
        )  # fmt: skip
        # Written in a scratch directory beside the target, then moved into place file by file: the train
        # split becomes FILE itself, the others sit beside it, and the card names the files as they end up.
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".tandem-export-") as scratch:
            result = export_write(rows, directory=scratch, stem=out.stem, options=options, columns=columns)
            result["counts"] = counts.to_dict()
            result["aggregation"] = aggregation_summary(winners)
            files = []
            for split, info in result["splits"].items():
                target = out if split == "train" else out.with_name(f"{out.stem}.{split}{out.suffix}")
                os.replace(Path(scratch) / info["file"], target)
                info["file"] = target.name
                files.append({"split": split, "path": str(target), "rows": info["rows"], "sha256": info["sha256"]})
            card = out.with_name(f"{out.stem}.README.md")
            text = dataset_card(
                facts=facts, schema=campaign.label_schema, kind=campaign.kind, options=options, columns=columns,
                result=result, agreement=agreement,
            )  # fmt: skip
            card.write_text(text, encoding="utf-8")
        self.stdout.write(
            json.dumps(
                {"files": files, "card": str(card), "counts": result["counts"], "aggregation": result["aggregation"]}
            )
        )
