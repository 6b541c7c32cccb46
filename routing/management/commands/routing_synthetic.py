"""`manage.py routing_synthetic --items N --seed S --out FILE [--hyper-tags]`: synthetic routing_eval rows as JSONL
(the generative story is in routing/synthetic.py; `--hyper-tags` adds a prompt tagger's tags per row)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.synthetic import synthetic_rows


class Command(BaseCommand):
    help = "Write synthetic preference rows (items, human labels, two judges in both orders) for routing_eval."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, required=True, help="how many rows")
        parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same file")
        parser.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
        parser.add_argument(
            "--hyper-tags",
            action="store_true",
            help="a latent expertise level that widens the judges' blind spot, and per row the tags a prompt "
            "tagger would give (routing.tagger), the only window onto it",
        )

    def handle(self, *args, **opts):
        out: Path = opts["out"]
        if opts["items"] < 1:
            raise CommandError("--items: at least 1")
        if opts["seed"] < 0:
            raise CommandError("--seed: not negative")
        if not out.parent.is_dir():
            raise CommandError(f"--out: the directory {out.parent} does not exist")
        with out.open("w", encoding="utf-8") as lines:
            for row in synthetic_rows(items=opts["items"], seed=opts["seed"], hyper_tags=opts["hyper_tags"]):
                lines.write(json.dumps(row) + "\n")
        tagged = " with tagger tags" if opts["hyper_tags"] else ""
        self.stdout.write(f"wrote {opts['items']} rows{tagged} to {out}")
