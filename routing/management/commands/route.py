"""`manage.py route CAMPAIGN [--sync]`: run the campaign's routing policy and print a JSON summary."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign, Job
from annotate.services.campaigns import campaign_get
from jobs.runner import job_run, job_wait
from routing.judges.runs import judge_run_start
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
            job = route_start(
                campaign=campaign, dispatch=not opts["sync"], start_judges=start_judges and not opts["sync"]
            )
        except ValueError as exc:
            raise CommandError(f"campaign {campaign.slug!r}: {exc}") from exc
        if not opts["sync"]:
            try:
                job = job_wait(job=job, timeout=opts["timeout"], poll=0.3)
            except TimeoutError as exc:
                raise CommandError(f"routing pass: {exc}") from None
            self._finish(job)
            return
        job = job_run(job_id=job.pk)
        result = job.result or {}
        if job.state == Job.State.SUCCEEDED and result.get("waiting_for_judges") and start_judges:
            judges = list(campaign.judges.filter(active=True, imported=False))
            if judges:
                self.stderr.write(f"{result['waiting_for_judges']} items wait for the judges: running them here")
                run = job_run(
                    job_id=judge_run_start(
                        campaign=campaign, judges=judges, scope="routable", dispatch=False, route_after=False
                    ).pk
                )
                if run.state != Job.State.SUCCEEDED:
                    why = (run.error or "").strip().splitlines()[:1]
                    raise CommandError(f"judge run {run.pk} ended {run.state}" + (f": {why[0]}" if why else ""))
                job = job_run(job_id=route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
                if job.result is not None:
                    job.result["judge_run"] = run.pk
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
