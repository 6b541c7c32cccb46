"""What a judge run judges: each judge's plan for a campaign (template, samples, orders) and the run's items.

A plan fixes everything a judgment's key depends on except the item: the judge, its template (whose
version is stored on every judgment), how many samples it draws and in which presentation orders it is
asked. Pairwise and "both" campaigns are judged in both orders (the second with the responses swapped);
rubric campaigns once per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from annotate.models import Campaign, Item, Judge
from routing.judges.templates import JudgeTemplate, template_for

JOB_KIND = "judge_run"
SCOPES = ("routed", "all", "routable", "gold")
MAX_SAMPLES = 16
# The kinds judged in both presentation orders: their labels compare two responses.
TWO_ORDER_KINDS = (Campaign.Kind.PAIRWISE, Campaign.Kind.BOTH)


@dataclass(frozen=True)
class Plan:
    """How one judge judges this campaign."""

    judge: Judge
    template: JudgeTemplate
    samples: int
    structured: bool
    logprobs: bool
    orders: tuple[bool, ...]  # position_swapped values: both orders for pairwise and "both"

    @property
    def per_item(self) -> int:
        return self.samples * len(self.orders)


def judge_plans(*, campaign: Campaign, judges: list[Judge]) -> list[Plan]:
    """Each judge's template, samples and capabilities for this campaign; ValueError says what is wrong."""
    plans = []
    for judge in judges:
        if judge.imported:
            raise ValueError(f"judge {judge.name!r} only holds imported labels; it has no endpoint to call")
        if not judge.model:
            raise ValueError(f"judge {judge.name!r} has no model name")
        try:
            template = template_for(name=judge.prompt_template, override=judge.prompt_override, kind=campaign.kind)
        except ValueError as exc:
            raise ValueError(f"judge {judge.name!r}: {exc}") from None
        samples = judge.sampling.get("samples", 1)
        if not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
            raise ValueError(f"judge {judge.name!r}: sampling.samples must be an integer from 1 to {MAX_SAMPLES}")
        plans.append(
            Plan(
                judge=judge,
                template=template,
                samples=samples,
                structured=bool(judge.capabilities.get("json_schema")),
                logprobs=bool(judge.capabilities.get("logprobs")),
                orders=(False, True) if campaign.kind in TWO_ORDER_KINDS else (False,),
            )
        )
    return plans


def run_items(*, campaign: Campaign, scope: str):
    """The items a run judges: those routed to the judges (llm or both), every item, every item a judge
    may still be needed on (`routable`: not a gold check, and not one that humans alone label and have
    labelled or leased; what a judge-first routing policy needs verdicts on), or the gold checks (`gold`: in
    both orders like every pairwise item, so the judges are scored on the same gold as the humans,
    `routing.gold`)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    items = Item.objects.filter(campaign=campaign)
    if scope == "gold":
        if not items.filter(gold_label__isnull=False).exists():
            raise ValueError(f"campaign {campaign.slug!r} has no gold items to score the judges on")
        return items.filter(gold_label__isnull=False)
    if scope == "routed":
        items = items.filter(route__in=(Item.Route.LLM, Item.Route.BOTH))
    elif scope == "routable":
        items = items.filter(gold_label__isnull=True).exclude(
            Q(route=Item.Route.HUMAN) & (Q(human_label_count__gt=0) | Q(assigned_count__gt=0))
        )
    return items


def judged_by(plans: list[Plan]) -> Q:
    """Judgments made by these judges with the prompt version each uses now."""
    condition = Q()
    for plan in plans:
        condition |= Q(judge=plan.judge, prompt_version=plan.template.version)
    return condition
