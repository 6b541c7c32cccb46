"""`manage.py create_campaign NAME --kind K --preset P [--overlap N] [quality flags] [--open]`: prints
{"id", "slug", "state"}. Quality flags: --qualification-items, --qualification-threshold, --no-qualification-feedback,
--requalify-on-guidelines, --attention-max-failures, --min-seconds, --overlap-max, --agreement-threshold,
--no-overlap-on-judge-disagreement, --judge-gold-threshold, --reviewers-see-identities."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotate import schema as label_schema
from annotate.services.campaigns import QUALITY_FIELDS, CampaignError, campaign_create, campaign_state_set


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
        quality = parser.add_argument_group("quality control")
        quality.add_argument(
            "--qualification-items", type=int, default=0, help="Gold items a new annotator labels first (0: no gate)."
        )
        quality.add_argument(
            "--qualification-threshold", type=float, default=0.8, help="Share right to enter the queue (default 0.8)."
        )
        quality.add_argument(
            "--no-qualification-feedback",
            dest="qualification_feedback",
            action="store_false",
            help="Do not show the right answer after each qualification item.",
        )
        quality.add_argument(
            "--requalify-on-guidelines", action="store_true", help="New guidelines start a new qualification round."
        )
        quality.add_argument(
            "--attention-max-failures", type=int, help="Failed attention checks before a pause (default: never)."
        )
        quality.add_argument("--min-seconds", type=float, help="Least seconds per item; faster labels are too fast.")
        quality.add_argument("--overlap-max", type=int, help="Dynamic overlap: labels on a disputed item, at most.")
        quality.add_argument(
            "--agreement-threshold", type=float, default=0.6, help="Agreement below which an item is disputed."
        )
        quality.add_argument(
            "--no-overlap-on-judge-disagreement",
            dest="overlap_on_judge_disagreement",
            action="store_false",
            help="The judges differing from the human majority is not a dispute.",
        )
        quality.add_argument("--judge-gold-threshold", type=float, help="Gold accuracy a judge needs for llm-only.")
        quality.add_argument(
            "--reviewers-see-identities", action="store_true", help="Reviewers see who gave each label."
        )
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
                **{name: opts[name] for name in QUALITY_FIELDS},
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
