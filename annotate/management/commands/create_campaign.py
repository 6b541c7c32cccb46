"""`manage.py create_campaign NAME --kind K --preset P [--overlap N] [--open]`: prints {"id", "slug", "state"}."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotate import schema as label_schema
from annotate.services.campaigns import CampaignError, campaign_create, campaign_state_set


class Command(BaseCommand):
    help = (
        "Create a campaign from a preset (or a schema file) and print its id, slug and state as JSON. "
        "A new campaign is a draft, which annotators do not see: pass --open, or open it later with "
        "`manage.py campaign_state CAMPAIGN open` (or the Open button on its settings page, /c/<slug>/settings/)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=label_schema.KINDS)
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--preset", choices=sorted(label_schema.PRESETS))
        group.add_argument("--schema", type=Path, help="A JSON file with a label schema.")
        parser.add_argument("--overlap", type=int, default=1, help="Human labels wanted per item (default 1).")
        parser.add_argument("--slug", help="The campaign's address, /c/<slug>/ (default: made from the name).")
        parser.add_argument("--guidelines", type=Path, help="A Markdown file with the guidelines.")
        parser.add_argument("--human-budget", type=float)
        parser.add_argument("--lease-minutes", type=int, default=10, help="How long an item is held (default 10).")
        parser.add_argument("--gold-rate", type=float, default=0.0, help="Share of items that are gold checks (0-1).")
        parser.add_argument("--owner", help="Username that owns the campaign (sees and runs its admin pages).")
        parser.add_argument("--open", action="store_true", help="Open it at once: annotators in its pool can label.")

    def handle(self, *args, **opts):
        schema = None
        if opts["schema"]:
            try:
                schema = json.loads(opts["schema"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{opts['schema']}: {exc}") from exc
        guidelines = opts["guidelines"].read_text(encoding="utf-8") if opts["guidelines"] else ""
        owner = None
        if opts["owner"]:
            owner = get_user_model().objects.filter(username=opts["owner"]).first()
            if owner is None:
                raise CommandError(f"--owner: no account named {opts['owner']!r}")
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
                lease_seconds=opts["lease_minutes"] * 60,
                gold_rate=opts["gold_rate"],
                created_by=owner,
            )
            if opts["open"]:
                campaign = campaign_state_set(campaign=campaign, state=campaign.State.OPEN)
        except CampaignError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"id": campaign.pk, "slug": campaign.slug, "state": campaign.state}))
        if campaign.state == campaign.State.DRAFT:
            self.stderr.write(
                f"{campaign.slug} is a draft: annotators do not see it yet. "
                f"Open it with: manage.py campaign_state {campaign.slug} open"
            )
