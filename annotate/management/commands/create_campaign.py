"""`manage.py create_campaign NAME --kind K --preset P [--overlap N]`: prints {"id", "slug"}."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate import schema as label_schema
from annotate.services.campaigns import CampaignError, campaign_create


class Command(BaseCommand):
    help = "Create a campaign from a preset (or a schema file) and print its id and slug as JSON."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=label_schema.KINDS)
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--preset", choices=sorted(label_schema.PRESETS))
        group.add_argument("--schema", type=Path, help="A JSON file with a label schema.")
        parser.add_argument("--overlap", type=int, default=1)
        parser.add_argument("--slug")
        parser.add_argument("--guidelines", type=Path, help="A Markdown file with the guidelines.")
        parser.add_argument("--human-budget", type=float)

    def handle(self, *args, **opts):
        schema = None
        if opts["schema"]:
            try:
                schema = json.loads(opts["schema"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{opts['schema']}: {exc}") from exc
        guidelines = opts["guidelines"].read_text(encoding="utf-8") if opts["guidelines"] else ""
        try:
            campaign = campaign_create(
                name=opts["name"],
                kind=opts["kind"],
                preset=opts["preset"],
                schema=schema,
                overlap=opts["overlap"],
                slug=opts["slug"],
                guidelines=guidelines,
                human_budget=opts["human_budget"],
            )
        except CampaignError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"id": campaign.pk, "slug": campaign.slug}))
