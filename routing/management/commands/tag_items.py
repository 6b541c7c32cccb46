"""`manage.py tag_items CAMPAIGN [--judge NAME] [--sync] [--retry-failed]`: ask the prompt tagger about every item
the tag cache lacks (routing/tagger), wait, and say what was done or why nothing was."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.access import campaign_lookup
from annotate.models import Job
from jobs.runner import job_run, job_wait
from routing.tagger.cache import items_to_tag, tag_counts
from routing.tagger.runs import tagger_for, tagging_start


class Command(BaseCommand):
    help = (
        "Tag a campaign's prompts with the HyPER-style tagger (subject, expertise, open-endedness, safety, "
        "complexity, format constraints) for the learned router; items already tagged are not asked again."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or slug.")
        parser.add_argument("--judge", help="The judge that tags (default: routing_params.tagger.judge).")
        parser.add_argument("--sync", action="store_true", help="Run in this process instead of a Celery worker.")
        parser.add_argument(
            "--retry-failed", action="store_true", help="Ask again about items whose answer did not parse."
        )
        parser.add_argument("--timeout", type=float, default=0, help="Give up waiting after this many seconds.")

    def handle(self, *args, **opts):
        campaign = campaign_lookup(opts["campaign"])
        if campaign is None:
            raise CommandError(f"no campaign with id or slug {opts['campaign']!r}")
        try:
            judge = tagger_for(campaign=campaign, name=opts["judge"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        counts = tag_counts(campaign=campaign)
        if not items_to_tag(campaign=campaign, retry_failed=opts["retry_failed"]):
            self.stdout.write(self._nothing_to_do(counts, opts["retry_failed"]))
            return
        job = tagging_start(
            campaign=campaign, judge=judge, dispatch=not opts["sync"], retry_failed=opts["retry_failed"]
        )
        if opts["sync"]:
            job = job_run(job_id=job.pk)
        else:
            try:
                job = job_wait(job=job, timeout=opts["timeout"], poll=0.3)
            except TimeoutError as exc:
                raise CommandError(f"tagging: {exc}") from None
        result = job.result or {}
        summary = {"job": job.pk, "state": job.state, **{k: v for k, v in result.items() if k != "running"}}
        if job.error:
            summary["error"] = job.error.splitlines()[0]
        self.stdout.write(json.dumps(summary, indent=2))
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(
                f"tagging job {job.pk} ended {job.state}" + (f": {summary['error']}" if job.error else "")
            )
        self.stdout.write(
            f"asked about {result['to_tag']:,} items with {result['tagger']}: {result['tagged']:,} tagged, "
            f"{result['parse_failures']:,} answers did not parse, {result['call_failures']:,} calls failed "
            f"(prompt version {result['prompt_version']}, cost {result['cost_this_run']})"
        )

    @staticmethod
    def _nothing_to_do(counts: dict, retry_failed: bool) -> str:
        message = f"0 items need tags: {counts['tagged']:,} are tagged with prompt version {counts['prompt_version']}"
        if counts["failed"] and not retry_failed:
            message += f"; {counts['failed']:,} answers did not parse (--retry-failed asks again)"
        if not counts["items"]:
            message = "0 items need tags: the campaign has no items"
        return message
