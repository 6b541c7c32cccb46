"""`manage.py create_judge NAME --base-url URL --model M [--api-key-env VAR] ...`: prints the judge as JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from annotate.services.campaigns import campaign_get
from routing.judges.services import judge_create
from routing.judges.templates import BUILTIN_TEMPLATES


class Command(BaseCommand):
    help = "Create an LLM judge (any OpenAI-compatible endpoint), probe what it supports, and print it as JSON."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--base-url", required=True, help="e.g. https://api.openai.com/v1 or http://127.0.0.1:8001/v1"
        )
        parser.add_argument("--model", required=True)
        parser.add_argument(
            "--api-key-env", default="", help="NAME of the environment variable holding the key (never the key)."
        )
        parser.add_argument("--rpm", type=int, default=60, help="Requests per minute, across all workers.")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Requests in flight at once, across all workers."
        )
        parser.add_argument("--price-in", default="0", help="Price per 1K input tokens.")
        parser.add_argument("--price-out", default="0", help="Price per 1K output tokens.")
        parser.add_argument("--template", default="", choices=["", *sorted(BUILTIN_TEMPLATES)])
        parser.add_argument("--sampling", default="{}", help='JSON, e.g. {"temperature": 0, "samples": 3}')
        parser.add_argument("--campaign", action="append", default=[], help="Add the judge to this campaign.")
        parser.add_argument("--no-probe", action="store_true", help="Do not call the endpoint now.")

    def handle(self, *args, **opts):
        try:
            sampling = json.loads(opts["sampling"])
        except ValueError as exc:
            raise CommandError(f"--sampling: not JSON: {exc}") from exc
        if not isinstance(sampling, dict):
            raise CommandError("--sampling: a JSON object is expected")
        try:
            campaigns = [campaign_get(ref) for ref in opts["campaign"]]
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        try:
            judge = judge_create(
                name=opts["name"],
                base_url=opts["base_url"],
                model=opts["model"],
                api_key_env=opts["api_key_env"],
                requests_per_minute=opts["rpm"],
                concurrency=opts["concurrency"],
                price_in_per_1k=opts["price_in"],
                price_out_per_1k=opts["price_out"],
                prompt_template=opts["template"],
                sampling=sampling,
                probe=not opts["no_probe"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for campaign in campaigns:
            campaign.judges.add(judge)
        self.stdout.write(
            json.dumps(
                {
                    "id": judge.pk,
                    "name": judge.name,
                    "model": judge.model,
                    "capabilities": judge.capabilities,
                    "campaigns": [c.slug for c in campaigns],
                }
            )
        )
