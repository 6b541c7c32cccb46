"""What the campaign's budget is expected to buy: routing_eval on its own calibration slice.

The calibration slice went to both humans and judges, at random, so it is an unbiased sample of the
campaign with both kinds of labels: replaying the routing_eval protocol on it estimates the agreement
with human consensus that the campaign's policy gives at its budget — "at your budget, routing is
expected to give X% agreement with human consensus" on the dashboard.
"""

from __future__ import annotations

from annotate.models import Campaign, Item
from routing import evaluation
from routing.router import CALIBRATION, _latest_decisions, _text_fields, human_labels, judge_labels

MIN_ITEMS = 20
REPEATS = 20
CURVE_BUDGETS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def calibration_rows(campaign: Campaign) -> list[dict]:
    """The calibration slice's items that have human and judge labels, as routing_eval rows."""
    latest = _latest_decisions(campaign.pk)
    ids = sorted(
        item_id for item_id, (policy, overridden) in latest.items() if policy == CALIBRATION and not overridden
    )
    humans, judges = human_labels(ids), judge_labels(ids)
    ids = [i for i in ids if humans.get(i) and judges.get(i)]
    texts = _text_fields(campaign, ids)
    return [{**texts[i], "human_labels": humans[i], "judge_labels": judges[i]} for i in ids]


def budget_fraction(campaign: Campaign, n_items: int) -> float | None:
    """The human budget as a fraction of the campaign's routable items."""
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_HUMAN:
        return 1.0
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_LLM:
        return 0.0
    budget = campaign.human_budget
    if budget is None:
        return None
    if budget <= 1:
        return float(budget)
    return min(1.0, budget / n_items) if n_items else None


def routing_forecast(*, campaign: Campaign, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Expected agreement with human consensus at the campaign's budget, from its calibration slice.

    Returns `{"n_items", "budget_fraction", "policy", "expected", "random", "all_llm", "all_human",
    "oracle", "curve", "note"}` where each estimate is `{"accuracy", "ci95"}` (None when it cannot be
    computed and `note` says why), and `curve` holds, per policy (the campaign's, random, the oracle), a
    list of `{"budget", "accuracy", "ci95"}` over CURVE_BUDGETS and the campaign's own budget. Items with
    a single human label use it as the consensus (routing_eval's `single_label_gold`), so with an overlap
    of 1 "all human" is 1.0 by construction.
    """
    out = {"n_items": 0, "budget_fraction": None, "policy": campaign.routing_policy, "expected": None, "note": ""}
    if campaign.kind != Campaign.Kind.PAIRWISE:
        out["note"] = "the forecast covers pairwise campaigns"
        return out
    rows = calibration_rows(campaign)
    out["n_items"] = len(rows)
    n_routable = Item.objects.filter(campaign=campaign, gold_label__isnull=True).count()
    fraction = budget_fraction(campaign, n_routable)
    out["budget_fraction"] = fraction
    if fraction is None:
        out["note"] = "no human budget set"
        return out
    if len(rows) < MIN_ITEMS:
        out["note"] = f"{len(rows)} calibration items have both human and judge labels; the forecast needs {MIN_ITEMS}"
        return out
    policy = campaign.routing_policy
    names = [p for p in ("random", policy) if p in evaluation.POLICIES]
    names = list(dict.fromkeys(names))
    budgets = sorted({*CURVE_BUDGETS, round(fraction, 4)})
    try:
        result = evaluation.routing_eval(
            rows, budgets=budgets, policy_names=names, repeats=repeats, seed=seed, single_label_gold=True
        )
    except ValueError as exc:
        out["note"] = str(exc)
        return out
    key = evaluation.budget_key(round(fraction, 4))
    curves = {name: result["policies"][name] for name in names}
    curves["oracle"] = result["oracle"]
    out["curve"] = {
        name: [{"budget": b, **points[evaluation.budget_key(b)]} for b in budgets] for name, points in curves.items()
    }
    out["random"] = result["policies"]["random"][key]
    out["all_llm"], out["all_human"] = result["all_llm"], result["all_human"]
    out["oracle"] = result["oracle"][key]
    if policy == Campaign.RoutingPolicy.ALL_HUMAN:
        out["expected"] = result["all_human"]
    elif policy == Campaign.RoutingPolicy.ALL_LLM:
        out["expected"] = result["all_llm"]
    else:
        out["expected"] = result["policies"][policy][key]
    return out
