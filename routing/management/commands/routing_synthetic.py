"""`manage.py routing_synthetic --items N --seed S --out FILE`: synthetic routing_eval rows as JSONL
(the generative story is in routing/synthetic.py)."""

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

    def handle(self, *args, **opts):
        out: Path = opts["out"]
        if opts["items"] < 1:
            raise CommandError("--items: at least 1")
        if opts["seed"] < 0:
            raise CommandError("--seed: not negative")
        if not out.parent.is_dir():
            raise CommandError(f"--out: the directory {out.parent} does not exist")
        with out.open("w", encoding="utf-8") as lines:
            for row in synthetic_rows(items=opts["items"], seed=opts["seed"]):
                lines.write(json.dumps(row) + "\n")
        self.stdout.write(f"wrote {opts['items']} rows to {out}")
