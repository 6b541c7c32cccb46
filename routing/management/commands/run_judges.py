"""`manage.py run_judges CAMPAIGN [--judge NAME] [--sync]`: run the judges, wait, print a JSON summary."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Campaign, Job, Judge
from annotate.services.campaigns import campaign_get
from jobs.runner import job_run, job_wait
from routing.judges.runs import SCOPES, judge_run_start


class Command(BaseCommand):
    help = "Run a campaign's LLM judges on its items and print {done, failed, cost, ...} when the run ends."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument("--judge", action="append", default=[], help="Only this judge (repeatable).")
        parser.add_argument(
            "--scope",
            choices=SCOPES,
            default="routed",
            help="routed: items routed to judges; all; routable: those a judge may still be needed on; "
            "gold: the gold items, to score the judges on them.",
        )
        parser.add_argument("--sync", action="store_true", help="Run in this process instead of a Celery worker.")
        parser.add_argument("--timeout", type=float, default=0, help="Give up waiting after this many seconds.")

    def handle(self, *args, **opts):
        try:
            campaign = campaign_get(opts["campaign"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        judges = None
        if opts["judge"]:
            judges = list(Judge.objects.filter(name__in=opts["judge"]))
            missing = set(opts["judge"]) - {j.name for j in judges}
            if missing:
                raise CommandError(f"no judge named {', '.join(sorted(missing))}")
        try:
            job = judge_run_start(campaign=campaign, judges=judges, scope=opts["scope"], dispatch=not opts["sync"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["sync"]:
            job = job_run(job_id=job.pk)
        else:
            job = self._wait(job, opts["timeout"])
        result = job.result or {}
        summary = {
            "job": job.pk,
            "state": job.state,
            "done": result.get("done", job.progress_done),
            "total": result.get("total", job.progress_total),
            "failed": result.get("failed", 0),
            "parse_failures": result.get("parse_failures", 0),
            "cost": result.get("cost", result.get("cost_this_run", "0")),
            "routed_to_humans": result.get("routed_to_humans", 0),
            "processes": result.get("processes", 1),
        }
        if job.error:
            summary["error"] = job.error.splitlines()[0]
        self.stdout.write(json.dumps(summary))
        for failure in result.get("failures", [])[:20]:
            self.stderr.write(json.dumps(failure))
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"judge run {job.pk} ended {job.state}")

    def _wait(self, job: Job, timeout: float) -> Job:
        def show(job: Job) -> None:
            if job.progress_total:
                self.stderr.write(f"\r{job.progress_done}/{job.progress_total}", ending="")

        try:
            job = job_wait(job=job, timeout=timeout, on_progress=show)
        except TimeoutError as exc:
            raise CommandError(f"judge run: {exc}") from None
        self.stderr.write("")
        return job
