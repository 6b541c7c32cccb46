"""`manage.py campaign_state CAMPAIGN [open|pause|close]`: show or change a campaign's state."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from annotate.services.campaigns import (
    TRANSITIONS,
    CampaignError,
    campaign_get,
    campaign_notices,
    campaign_state_set,
    state_from_word,
)


class Command(BaseCommand):
    help = (
        "Show a campaign's state (draft, open, paused, closed), what it may become and why annotators may not "
        "see it; with a state, move it there. Annotators label only open campaigns; a paused one hands out no new "
        "items; a closed one takes no labels (it can be opened again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="id or slug")
        parser.add_argument("state", nargs="?", help="open, pause(d), close(d) — or draft, for a draft only")

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        before = campaign.state
        if opts["state"]:
            try:
                campaign = campaign_state_set(campaign=campaign, state=state_from_word(opts["state"]))
            except CampaignError as exc:
                raise CommandError(str(exc).removeprefix("state: ")) from exc
        self.stdout.write(
            json.dumps(
                {
                    "slug": campaign.slug,
                    "state": campaign.state,
                    "was": before,
                    "can_become": list(TRANSITIONS[campaign.state]),
                    "notices": campaign_notices(campaign=campaign),
                }
            )
        )
