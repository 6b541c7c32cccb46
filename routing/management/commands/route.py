"""`manage.py route CAMPAIGN [--sync]`: run the campaign's routing policy and print a JSON summary."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign, Job
from annotate.services.campaigns import campaign_get
from jobs.runner import job_wait
from routing.chain import route_here
from routing.router import route_start


class Command(BaseCommand):
    help = (
        "Route a campaign's items to humans, judges or both with its policy and budget; prints the items per "
        "destination, the calibration slice, what waits for judges and (learned) the features that matter."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Run in this process instead of a Celery worker; a judge-first policy runs the judges it waits "
            "for here too, then routes again.",
        )
        parser.add_argument("--no-judges", action="store_true", help="Never start a judge run.")
        parser.add_argument("--timeout", type=float, default=0, help="Give up waiting after this many seconds.")

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        start_judges = not opts["no_judges"]
        try:
            if not opts["sync"]:
                job = route_start(campaign=campaign, start_judges=start_judges)
            else:
                job = route_here(
                    campaign=campaign,
                    start_judges=start_judges,
                    on_judges=lambda n: self.stderr.write(f"{n} items wait for the judges: running them here"),
                )
        except ValueError as exc:
            raise CommandError(f"campaign {campaign.slug!r}: {exc}") from exc
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        if not opts["sync"]:
            try:
                job = job_wait(job=job, timeout=opts["timeout"], poll=0.3)
            except TimeoutError as exc:
                raise CommandError(f"routing pass: {exc}") from None
        self._finish(job)

    def _finish(self, job: Job) -> None:
        summary = {"job": job.pk, "state": job.state, **(job.result or {})}
        if job.error:
            summary["error"] = job.error.splitlines()[0]
        self.stdout.write(json.dumps(summary, indent=2))
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(
                f"routing pass {job.pk} ended {job.state}" + (f": {summary['error']}" if job.error else "")
            )
