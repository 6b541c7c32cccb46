"""`manage.py compute_stats CAMPAIGN [--json] [--bootstrap N]`: compute, store and print a statistics snapshot."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign
from annotate.services.campaigns import campaign_get
from annotate.services.stats import stats_snapshot_create


class Command(BaseCommand):
    help = "Compute a campaign's agreement statistics, store them as a snapshot and print them."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument("--json", action="store_true", help="Print the whole snapshot as JSON.")
        parser.add_argument("--bootstrap", type=int, default=1000, help="Resamples for the 95%% intervals (0: none).")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        if opts["bootstrap"] < 0:
            raise CommandError("--bootstrap: a number of resamples, 0 or more")
        snapshot = stats_snapshot_create(campaign=campaign, bootstrap=opts["bootstrap"], seed=opts["seed"])
        payload = snapshot.payload
        if opts["json"]:
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"{campaign.slug}: {payload['n_items']} items, {payload['n_human_labels']} human labels, "
            f"{payload['n_judge_labels']} judge labels ({snapshot.seconds:.2f} s)"
        )
        for name, figures in payload["criteria"].items():
            alpha = figures["krippendorff_alpha"]["ordinal"]
            shown = "n/a" if alpha is None else f"{alpha:.3f}"
            self.stdout.write(f"  {name}: α ordinal {shown} over {figures['n_items_multi']} items with ≥2 labels")
            for note in figures.get("notes", []):
                self.stdout.write(f"    {note}")
