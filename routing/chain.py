"""The one place that chains judge runs and routing passes: "judges finished → route" and "route needs
verdicts → judges", as follow-ups of their job kinds (`jobs.registry.job_followup`), so neither handler
imports the other.

- After a judge run (kind `judge_run`): its new verdicts decide where items go, so a routing pass is asked
  for when the campaign's policy is judge-first, when the run was started for a pass (`then_route`), when
  new gold scores may open or close the gold gate (`routing.gold`), or when a pass found the run busy and
  asked it to route again (`route_again`). That pass starts no judge run (no endless chain): items that
  arrived while the run was busy get the next run from here, started at once, which routes them when it
  ends. `route_after=False` (`route --sync`, which routes itself) asks for nothing.
- After a routing pass (kind `route`): unless the pass was asked not to (`start_judges=False`, a pass asked
  for by a judge run) or the campaign says `routing_params.auto_judge: false`, a judge run is started for
  what the judges still owe; a run already queued or running is never doubled — it is asked to route again
  when it ends if items wait for verdicts. The pass's result gains `judge_run` and, when items wait with no
  run to wait for, a `note` saying why.
- `route_here` is the same chain in this process (`manage.py route --sync`): the pass, the judge run its
  follow-up would start, the pass after it.
"""

from __future__ import annotations

import logging

from django.db import transaction

from annotate.models import Annotation, Campaign, Job
from jobs.registry import job_followup
from jobs.runner import job_run
from routing import router
from routing.judges import runs

log = logging.getLogger(__name__)


def judge_run_active(campaign: Campaign, *, excluding: Job | None = None) -> Job | None:
    """The campaign's judge run that is queued or running, if any (`excluding` one that has finished judging)."""
    active = Job.objects.filter(campaign=campaign, kind=runs.JOB_KIND, state__in=Job.ACTIVE_STATES)
    if excluding is not None:
        active = active.exclude(pk=excluding.pk)
    return active.order_by("id").first()


def _callable_judges(campaign: Campaign) -> list:
    return list(campaign.judges.filter(active=True, imported=False))


def judges_start(
    campaign: Campaign, *, waiting: bool, finished: Job | None = None, dispatch: bool = True, route_after: bool = True
) -> Job | None:
    """Queue a judge run for what the judges still owe: every routable item (not a gold check, not labelled
    or leased by a human) without a judgment from them yet. A run already queued or running was fixed on its
    items when it began: it is asked to route again when it ends (when items are `waiting`), so items that
    arrived meanwhile are judged by the next run. `finished`: the run whose follow-up this is, done judging
    though not yet marked so. None when nothing is owed, no judge has an endpoint, or a run is active.
    `dispatch=False, route_after=False`: the caller runs the job and routes after it itself (`route_here`)."""
    with transaction.atomic():
        # One starter at a time per campaign: two passes ending together must not start two runs.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        active = judge_run_active(campaign, excluding=finished)
        if active is not None:
            if waiting and not active.params.get("route_again"):
                Job.objects.filter(pk=active.pk).update(params={**active.params, "route_again": True})
            return None
        judges = _callable_judges(campaign)
        if not judges:
            return None
        judged = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE, judge__in=judges)
        owed = runs.run_items(campaign=campaign, scope="routable").exclude(pk__in=judged.values("item_id"))
        if not owed.exists():
            return None
        try:
            return runs.judge_run_start(
                campaign=campaign,
                judges=judges,
                scope="routable",
                then_route=waiting and route_after,
                dispatch=dispatch,
                route_after=route_after,
            )
        except ValueError as exc:
            log.warning("campaign %s: could not start the judges: %s", campaign.slug, exc)
            return None


def _auto_judge(campaign: Campaign) -> bool:
    return bool(campaign.routing_params.get("auto_judge", True))


def _judges_wanted(start_judges: bool, campaign: Campaign) -> bool:
    """Whether a pass that has ended may start judges: it was not asked not to, nor was the campaign."""
    return bool(start_judges) and _auto_judge(campaign)


@job_followup(runs.JOB_KIND)
def route_after_judges(job: Job, result: dict) -> dict | None:
    """A judge run has stored its judgments and verdicts: ask for the routing pass they call for."""
    if not job.params.get("route_after", True):
        return None
    campaign = Campaign.objects.get(pk=job.campaign_id)
    # Read fresh: a pass may have asked this run to route again while it ran.
    params = Job.objects.filter(pk=job.pk).values_list("params", flat=True).first() or {}
    again = bool(params.get("route_again"))
    scope = params.get("scope", "routed")
    gated = campaign.judge_gold_threshold is not None and scope in ("gold", "all")  # "all" judges gold items too
    wanted = again or gated or params.get("then_route") or campaign.routing_policy in router.JUDGE_POLICIES
    if not wanted:
        return None
    # The next run first, so that the pass sees it and says that its waiting items have a run to wait for.
    next_run = judges_start(campaign, waiting=True, finished=job) if again and _auto_judge(campaign) else None
    routing_pass = router.route_request(campaign=campaign, start_judges=False)
    return {
        "routing_pass": routing_pass.pk if routing_pass else None,
        "next_judge_run": next_run.pk if next_run else None,
    }


@job_followup(router.JOB_KIND)
def judges_after_route(job: Job, result: dict) -> dict | None:
    """A routing pass has ended: start the judge run that the items it could not route yet wait for."""
    if result.get("judge_run"):
        return None  # the pass started one itself
    campaign = Campaign.objects.get(pk=job.campaign_id)
    waiting = int(result.get("waiting_for_judges") or 0)
    run = None
    if _judges_wanted(job.params.get("start_judges", True), campaign):
        run = judges_start(campaign, waiting=bool(waiting))
    out: dict = {"judge_run": run.pk if run else None}
    if waiting and run is None:
        if not _callable_judges(campaign):
            out["note"] = (
                f"{waiting} items wait for a judge verdict, and the campaign has no active judge with an "
                "endpoint: add one (or import judge labels), then route again"
            )
        elif judge_run_active(campaign) is not None:
            out["note"] = f"{waiting} items wait for the judge run in progress; a pass follows it"
    return out


def route_here(*, campaign: Campaign, start_judges: bool = True, on_judges=None) -> Job:
    """The chain in this process, for `manage.py route --sync`: a pass; when items wait for verdicts, the
    judge run the pass's follow-up would start (the same rule: `judges_start` under `_judges_wanted`), run
    here; then the pass that routes its verdicts. Raises ValueError when the pass cannot start, RuntimeError
    when the judge run does not succeed. `on_judges(waiting)` is told before the judges run."""
    first = router.route_start(campaign=campaign, dispatch=False, start_judges=False)
    job = job_run(job_id=first.pk)
    waiting = int((job.result or {}).get("waiting_for_judges") or 0)
    if job.state != Job.State.SUCCEEDED or not waiting or not _judges_wanted(start_judges, campaign):
        return job
    run = judges_start(campaign, waiting=True, dispatch=False, route_after=False)
    if run is None:
        return job  # the pass's note (no judge with an endpoint, a run in progress) says why
    if on_judges is not None:
        on_judges(waiting)
    run = job_run(job_id=run.pk)
    if run.state != Job.State.SUCCEEDED:
        why = (run.error or "").strip().splitlines()[:1]
        raise RuntimeError(f"judge run {run.pk} ended {run.state}" + (f": {why[0]}" if why else ""))
    job = job_run(job_id=router.route_start(campaign=campaign, dispatch=False, start_judges=False).pk)
    if job.result is not None:
        job.result["judge_run"] = run.pk
    return job
