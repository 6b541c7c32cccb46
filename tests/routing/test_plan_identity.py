"""The policy that is forecast is the policy that runs: on the same items, judgments and seed, the live pass
(`route_campaign` over a campaign in the database) sends to humans exactly the items that routing_eval's
routing (`routing.evaluation.routed_to_humans`) picks — for random, judge_uncertainty and, given the pass's
own scores, learned — with the budget's cut inside a group of tied scores, so a different tie-break fails."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.models import Annotation, Campaign, Item, RoutingDecision
from routing import evaluation, policies
from routing.features import judge_signals
from routing.reads import judge_labels, stale_judgments
from routing.router import campaign_budget, route_campaign
from tests.factories import CampaignFactory, ItemFactory, JudgeFactory, UserFactory

from .test_router import judge_items, label

pytestmark = pytest.mark.django_db(transaction=True)

N = 300
CONFIDENCES = (None, 0.6, 0.8)  # three uncertainty levels among agreeing items, three among flipped ones


def _campaign(policy, budget: float, **params) -> tuple[Campaign, list[Item]]:
    campaign = CampaignFactory(routing_policy=policy, human_budget=budget, calibration_fraction=0.0, **params)
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    items = [ItemFactory(campaign=campaign, external_id=f"t{k}", metadata={"safety": "high" if k % 6 == 0 else "low"})
             for k in range(N)]  # fmt: skip
    rows = []
    for k, item in enumerate(items):
        flips = k % 5 == 0
        confidence = CONFIDENCES[(k // 5) % 3]
        for swapped in (False, True):
            rows.append(
                Annotation(item=item, campaign=campaign, source="judge", judge=judge, position_swapped=swapped,
                           label={"overall": -1 if (flips and swapped) else 1}, prompt_version="v1",
                           confidence=confidence)
            )  # fmt: skip
    Annotation.objects.bulk_create(rows)
    return campaign, items


def _eval_signals(campaign: Campaign, ids: list[int]) -> list[dict]:
    """The judge signals routing_eval computes from rows of these items (`judge_labels` as the forecast reads)."""
    judged = judge_labels(ids, exclude=stale_judgments(campaign))
    return [judge_signals(judged.get(i, [])) for i in ids]


def _live_humans(campaign: Campaign) -> set[int]:
    routes = Item.objects.filter(campaign=campaign, route__in=(Item.Route.HUMAN, Item.Route.BOTH))
    return set(routes.values_list("pk", flat=True))


def _cut_in_a_tie(scores: np.ndarray, humans: np.ndarray) -> bool:
    cut = scores[humans].min()
    return bool((scores[humans] == cut).sum() and (scores[~humans] == cut).sum())


@pytest.mark.parametrize("policy", [Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, Campaign.RoutingPolicy.RANDOM])
def test_the_live_pass_routes_to_humans_what_routing_eval_routes(policy):
    campaign, items = _campaign(policy, 0.15)
    summary = route_campaign(campaign=campaign)
    assert summary["destinations"]["unrouted"] == 0
    live = _live_humans(campaign)
    ids = [i.pk for i in items]
    signals = _eval_signals(campaign, ids)
    replayed = evaluation.routed_to_humans(policy, ids, campaign_budget(campaign), seed=campaign.pk, signals=signals)
    assert len(live) == policies.budget_count(N, 0.15) == 45
    assert {i for i, h in zip(ids, replayed, strict=True) if h} == live
    if policy == Campaign.RoutingPolicy.JUDGE_UNCERTAINTY:
        scores = np.array([policies.uncertainty_score(s) for s in signals])
        assert _cut_in_a_tie(scores, replayed)  # 60 flipped items in 3 tied groups of 20: the cut splits one
        # The draw decides inside the tie: keyed by position instead of item id, another set would go.
        by_position = evaluation.routed_to_humans(policy, range(N), 45, seed=campaign.pk, signals=signals)
        assert not np.array_equal(by_position, replayed)


def test_the_learned_pass_routes_what_routing_eval_routes_given_its_scores():
    campaign, items = _campaign(Campaign.RoutingPolicy.LEARNED, 0.25)
    # An earlier campaign teaches the model that the judge errs on safety-flagged items; its scores tie a lot
    # (items differ only by the tag and the judge's signals).
    earlier = CampaignFactory(routing_policy=Campaign.RoutingPolicy.ALL_HUMAN)
    old_judge, annotator = JudgeFactory(imported=True), UserFactory()
    old = [ItemFactory(campaign=earlier, external_id=f"o{k}", metadata={"safety": "high" if k % 4 == 0 else "low"})
           for k in range(120)]  # fmt: skip
    judge_items(earlier, old_judge, old, wrong={k for k in range(120) if k % 4 == 0}, flipped={1, 2, 3, 5})
    for item in old:
        label(item, annotator, 1)
    Campaign.objects.filter(pk=campaign.pk).update(routing_params={"train_campaigns": [earlier.slug]})
    campaign.refresh_from_db()
    summary = route_campaign(campaign=campaign)
    assert summary["learned"]["fallback"] == "" and summary["destinations"]["unrouted"] == 0
    ids = [i.pk for i in items]
    scores = dict(RoutingDecision.objects.filter(campaign=campaign).values_list("item_id", "score"))
    score_list = np.array([scores[i] for i in ids])
    replayed = evaluation.routed_to_humans(
        "learned", ids, campaign_budget(campaign), seed=campaign.pk, signals=_eval_signals(campaign, ids),
        scores=score_list,
    )  # fmt: skip
    assert {i for i, h in zip(ids, replayed, strict=True) if h} == _live_humans(campaign)
    # 10 score levels, in groups of 10 to 70 tied items: the budget's 75 ends inside the fifth group (61-80).
    assert replayed.sum() == 75 and _cut_in_a_tie(score_list, replayed)
