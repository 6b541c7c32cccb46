"""The campaign router: a routing pass (the Job of kind `route`) as read → plan → apply, and the requests,
checks and counts around it.

A pass (`route_campaign`):

1. reads the campaign's items (gold checks are not routed: they have their own queue) with each one's latest
   decision (`routing.reads`);
2. partitions them (`routing.plan.partition`): what must not move — an admin's override, the calibration
   slice, every item that humans have labelled or hold a live lease on — and tops the slice up;
3. reads what the policy ranks by (`routing.evidence`): the judges' signals from their current judgments,
   the learned policy's probabilities and contributions, the items no judge could label;
4. plans (`routing.plan.route_plan`, whose every rule is in `routing.policies`, the same plan `routing_eval`
   and the forecast replay): the slice to both, unusable verdicts to humans first, the rest of the budget to
   the policy's best candidates, the gold gate (`routing.gold.llm_only_gate`) over everything;
5. writes a RoutingDecision (destination, policy, score, reason, features) for every item whose destination
   changed, compare-and-set, all in one transaction under the campaign's lock (`routing.apply`), and returns
   a summary.

Routing is incremental: a pass over a campaign that gained items, or whose budget was raised, moves only
what it must. Judge-based policies route an item only once the judges have given it a verdict; the judge run
those items wait for is started after the pass, by the `route` job's follow-up (`routing.chain`), when the
job's params say `start_judges`.
"""

from __future__ import annotations

import math
import time

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from annotate.models import Campaign, Item, Job
from jobs.registry import JobFailed, job_handler
from jobs.runner import job_create
from routing import policies
from routing.apply import OVERRIDE, _move, decisions_apply, route_override
from routing.evidence import LearnedScores, judge_signal_map, learned_scores
from routing.gold import llm_only_gate
from routing.plan import (
    CALIBRATION,
    GOLD_GATE,
    HUMAN_SIDE,
    Evidence,
    Partition,
    Plan,
    PlanItem,
    Rules,
    gold_gate_reason,
    partition,
    route_plan,
)
from routing.reads import has_judges, routable_items, stale_judgments, unusable_verdicts

# What routing.api, the judge run and the tests import from here.
__all__ = [
    "BUDGETED_POLICIES", "CALIBRATION", "GOLD_GATE", "HUMAN_SIDE", "JOB_KIND", "JUDGE_POLICIES", "OVERRIDE",
    "campaign_budget", "gold_gate_reason", "human_target", "judge_signal_map", "last_pass", "route_campaign",
    "route_check", "route_counts", "route_override", "route_request", "route_start", "stale_judgments", "_move",
]  # fmt: skip

JOB_KIND = "route"
JUDGE_POLICIES = (Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, Campaign.RoutingPolicy.LEARNED)
BUDGETED_POLICIES = (Campaign.RoutingPolicy.RANDOM, *JUDGE_POLICIES)


def campaign_budget(campaign: Campaign) -> int | float | None:
    """The human budget as `policies.budget_count` takes it: a fraction (≤ 1) or a count of items."""
    budget = campaign.human_budget
    if budget is None:
        return None
    return float(budget) if budget <= 1 else int(round(budget))


def route_counts(campaign: Campaign) -> dict[str, int]:
    """The campaign's routable items per route (gold checks left out)."""
    counts = dict.fromkeys(Item.Route.values, 0)
    rows = Item.objects.filter(campaign=campaign, gold_label__isnull=True).values("route").annotate(n=Count("id"))
    counts.update(rows.values_list("route", "n"))
    return counts


def human_target(campaign: Campaign, n: int) -> int | None:
    """How many of the campaign's `n` routable items its policy gives to humans, the calibration slice
    included: all for all_human, none for all_llm, else the budget's count (None without a budget)."""
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_HUMAN:
        return n
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_LLM:
        return 0
    budget = campaign_budget(campaign)
    return None if budget is None else policies.budget_count(n, budget)


def calibrating(campaign: Campaign, *, judged: bool) -> bool:
    """Whether the campaign keeps a calibration slice: every policy but all_human, and that one once it has
    judges (`judged`)."""
    return campaign.routing_policy != Campaign.RoutingPolicy.ALL_HUMAN or judged


def campaign_rules(campaign: Campaign, n: int, *, judged: bool, gate: tuple[bool, str]) -> Rules:
    """The plan's settings for a pass over the campaign's `n` routable items; `judged`: it has judges;
    `gate`: the gold gate (`llm_only_gate`)."""
    fraction = float(campaign.calibration_fraction)
    target = human_target(campaign, n)
    gate_open, gate_reason = gate
    return Rules(
        policy=campaign.routing_policy,
        target=n if target is None else target,
        seed=campaign.pk,
        calibration_target=policies.budget_count(n, fraction) if calibrating(campaign, judged=judged) else 0,
        calibration_fraction=fraction,
        gate="" if gate_open else gate_reason,
    )


def _evidence(campaign: Campaign, part: Partition, *, judged: bool, tick) -> tuple[Evidence, LearnedScores | None]:
    """What the policy ranks the candidates by: judge signals (judge-first policies), the learned model's
    scores, and for the other policies the items no judge could label."""
    keys = [i.key for i in part.candidates]
    if campaign.routing_policy not in JUDGE_POLICIES:
        return Evidence(unusable=unusable_verdicts(campaign, keys) if judged else set()), None
    signals = judge_signal_map(campaign, keys, tick=tick)
    if campaign.routing_policy != Campaign.RoutingPolicy.LEARNED:
        return Evidence(signals=signals), None
    usable = [k for k in keys if k in signals and signals[k]["label"] is not None]
    learned = learned_scores(campaign, usable, signals, tick=tick)
    evidence = Evidence(signals=signals, scores=learned.scores, features=learned.features, fallback=learned.fallback)
    return evidence, learned


def route_campaign(*, campaign: Campaign, progress=None) -> dict:
    """One routing pass over the campaign (see the module's docstring); returns its summary."""
    budget = campaign_budget(campaign)
    if campaign.routing_policy in BUDGETED_POLICIES and budget is None:
        raise JobFailed(
            f"campaign {campaign.slug!r}: the {campaign.routing_policy} policy spends a human budget; set "
            "human_budget (a fraction ≤ 1 or a count of items)"
        )
    started = timezone.now()
    tick = _Ticker(progress)
    items = [
        PlanItem(i.id, i.route, i.labelled_or_leased, i.overridden, i.last_policy == CALIBRATION)
        for i in routable_items(campaign)
    ]
    judged = has_judges(campaign)
    tick(0, len(items), force=True)
    gate = llm_only_gate(campaign=campaign)
    rules = campaign_rules(campaign, len(items), judged=judged, gate=gate)
    part = partition(items, rules)
    evidence, learned = _evidence(campaign, part, judged=judged, tick=tick)
    plan = route_plan(part, rules, evidence)
    written = decisions_apply(
        campaign=campaign, items=items, decisions=plan.decisions, since=started, tick=lambda: tick(len(items))
    )
    tick(len(items), len(items), force=True)
    summary = _summary(campaign, rules, plan, written, learned)
    summary["calibration"]["note"] = (
        "" if calibrating(campaign, judged=judged) else "no judges: all_human campaigns calibrate once a judge is added"
    )
    summary["gold_gate"] = {"allowed": gate[0], "reason": gate[1], "to_humans": plan.gated}
    return summary


def _summary(campaign: Campaign, rules: Rules, plan: Plan, written: int, learned: LearnedScores | None) -> dict:
    part = plan.partition
    summary = {
        "campaign": campaign.slug,
        "policy": rules.policy,
        "items": len(part.items),
        "human_budget": campaign.human_budget,
        "human_items_target": rules.target if rules.policy in BUDGETED_POLICIES else None,
        "destinations": route_counts(campaign),
        "decisions_written": written,
        "calibration": {"fraction": campaign.calibration_fraction, "items": len(part.in_slice)},
        "kept_for_humans": len(part.kept),
        "overridden": len(part.overridden),
        "unusable_verdicts": len(plan.unusable),
        "over_budget": plan.over_budget,
        "gold_gate": {},
        "waiting_for_judges": len(plan.waiting),
    }
    if learned is not None:
        summary["learned"] = {
            "training_items": learned.training_items,
            "training_campaigns": learned.sources,
            "judge_error_rate": learned.judge_error_rate,
            "fallback": learned.fallback,
            "importances": dict(list(learned.importances.items())[:15]),
        }
    return summary


class _Ticker:
    """Reports progress (and so the heartbeat that keeps the sweeper from re-queuing a live pass) at most
    every few seconds, from the long loops of a pass."""

    def __init__(self, progress, every: float = 5.0):
        self.progress, self.every, self.last = progress, every, -math.inf

    def __call__(self, done: int | None = None, total: int | None = None, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            self.progress(done=done, total=total)


# --- jobs, requests ---------------------------------------------------------------------------------------


@job_handler(JOB_KIND)
def route_job(job: Job, progress) -> dict:
    """A pass; whether judges start afterwards (`params["start_judges"]`) is the `route` follow-up's to read."""
    return route_campaign(campaign=Campaign.objects.get(pk=job.campaign_id), progress=progress)


def route_start(*, campaign: Campaign, created_by=None, dispatch: bool = True, start_judges: bool = True) -> Job:
    """Queue a routing pass (checks first that the policy can run, so the caller hears what is wrong)."""
    route_check(campaign)
    return job_create(
        kind=JOB_KIND,
        params={"start_judges": start_judges},
        campaign=campaign,
        created_by=created_by,
        dispatch=dispatch,
    )


def route_check(campaign: Campaign) -> None:
    """ValueError when the campaign's policy cannot route it as configured."""
    if campaign.routing_policy in BUDGETED_POLICIES and campaign.human_budget is None:
        raise ValueError(
            f"the {campaign.routing_policy} policy spends a human budget: set the campaign's human_budget "
            "(a fraction ≤ 1 or a count of items)"
        )


def route_request(*, campaign: Campaign, start_judges: bool = True, countdown: float = 0) -> Job | None:
    """Ask for a routing pass after something routing depends on changed (new items, a judge run, a new
    budget or policy). A queued pass will see the change, so nothing is added; a campaign whose policy
    cannot run yet (no budget) gets none. A pass asked for by a judge run starts no judge run itself
    (`start_judges=False`), so an endpoint that keeps failing cannot set off an endless chain.

    Inside a transaction the request is made when it commits: a queued pass that starts meanwhile would
    not see the uncommitted change, and this request must not be dropped in its favour. Returns the job
    when one was queued here and then.
    """

    def request() -> Job | None:
        try:
            route_check(Campaign.objects.get(pk=campaign.pk))
        except (ValueError, Campaign.DoesNotExist):
            return None
        with transaction.atomic():
            queued = Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED)
            if queued.filter(params__start_judges=True).exists() or (not start_judges and queued.exists()):
                return None
            params = {"start_judges": start_judges}
            return job_create(kind=JOB_KIND, params=params, campaign=campaign, countdown=countdown)

    if connection.in_atomic_block:
        transaction.on_commit(request)
        return None
    return request()


def last_pass(campaign: Campaign) -> Job | None:
    return Job.objects.filter(campaign=campaign, kind=JOB_KIND).order_by("-created_at", "-id").first()
