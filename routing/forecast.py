"""What the campaign's budget is expected to buy: routing_eval on its own calibration slice.

The calibration slice went to both humans and judges, at random, so it is an unbiased sample of the
campaign with both kinds of labels: replaying the routing_eval protocol on it estimates the agreement
with human consensus that the campaign's policy gives at its budget — "at your budget, routing is
expected to give X% agreement with human consensus" on the dashboard.

The campaign spends its budget on the slice first (the slice's items keep their human labels) and gives
the policy what is left for the other items, so the estimate for the campaign is the slice's share at
the all-human accuracy plus the rest at the policy's accuracy with the budget left after the slice.
"""

from __future__ import annotations

from annotate.models import Campaign, Item, RoutingDecision
from routing.gold import llm_only_gate
from routing.reads import human_labels, judge_labels, stale_judgments, text_fields
from routing.router import CALIBRATION, human_target

MIN_ITEMS = 20
REPEATS = 20
CURVE_BUDGETS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def calibration_ids(campaign: Campaign) -> list[int]:
    """The items whose latest routing decision put them in the calibration slice (none overridden since)."""
    ids = set(RoutingDecision.objects.filter(campaign=campaign, policy=CALIBRATION).values_list("item_id", flat=True))
    latest: dict[int, str] = {}
    for item_id, policy in (
        RoutingDecision.objects.filter(item_id__in=ids).order_by("item_id", "-created_at", "-id").values_list(
            "item_id", "policy"
        )
    ):  # fmt: skip
        latest.setdefault(item_id, policy)
    return sorted(item_id for item_id, policy in latest.items() if policy == CALIBRATION)


def calibration_rows(campaign: Campaign, ids: list[int]) -> list[dict]:
    """The calibration slice's items (`calibration_ids`) that have human and judge labels, as routing_eval rows."""
    humans, judges = human_labels(ids), judge_labels(ids, exclude=stale_judgments(campaign))
    ids = [i for i in ids if humans.get(i) and judges.get(i)]
    texts = text_fields(campaign, ids)
    return [{**texts[i], "human_labels": humans[i], "judge_labels": judges[i]} for i in ids]


def _mix(share: float, fixed: dict, rest: dict) -> dict:
    """`share` of the items at `fixed`'s accuracy and the rest at `rest`'s (the interval mixed the same way)."""
    return {
        "accuracy": share * fixed["accuracy"] + (1 - share) * rest["accuracy"],
        "ci95": [share * f + (1 - share) * r for f, r in zip(fixed["ci95"], rest["ci95"], strict=True)],
    }


def routing_forecast(*, campaign: Campaign, repeats: int = REPEATS, seed: int = 0) -> dict:
    """Expected agreement with human consensus at the campaign's budget, from its calibration slice.

    Returns `{"n_items", "budget_fraction", "rest_fraction", "policy", "expected", "random", "all_llm",
    "all_human", "oracle", "curve", "note"}`. `budget_fraction` is the share of the campaign's items that
    go to humans, the slice included; `rest_fraction` the share of the other items the policy gets after
    the slice. `expected`, `random` and `oracle` are for the whole campaign (the slice at the all-human
    accuracy, the rest at the policy's), each `{"accuracy", "ci95"}`, None when it cannot be computed and
    `note` says why. `gold_gate` is `{"allowed", "reason"}` of the gate the routing pass applies: when it is
    closed, the pass gives humans every item the judges would have had alone, and `expected` is the all-human
    accuracy. `curve` holds, per policy (the campaign's, random, the oracle), `{"budget",
    "accuracy", "ci95"}` over CURVE_BUDGETS and `rest_fraction`: what a budget buys on items outside the
    slice. Items with a single human label use it as the consensus (routing_eval's `single_label_gold`), so
    with an overlap of 1 "all human" is 1.0 by construction. Pairwise campaigns only.
    """
    gate_open, gate_reason = llm_only_gate(campaign=campaign)
    out = {
        "n_items": 0, "budget_fraction": None, "rest_fraction": None, "policy": campaign.routing_policy,
        "expected": None, "note": "", "gold_gate": {"allowed": gate_open, "reason": gate_reason},
    }  # fmt: skip
    if campaign.kind != Campaign.Kind.PAIRWISE:
        out["note"] = "the forecast covers pairwise campaigns"
        return out
    if not RoutingDecision.objects.filter(campaign=campaign, policy=CALIBRATION).exists():
        out["note"] = "no calibration slice yet (a routing pass makes one once the campaign has judges)"
        return out
    slice_ids = calibration_ids(campaign)
    rows = calibration_rows(campaign, slice_ids)
    out["n_items"] = len(rows)
    n_routable = Item.objects.filter(campaign=campaign, gold_label__isnull=True).count()
    slice_size = len(slice_ids)
    human = human_target(campaign, n_routable)
    if human is None or not n_routable:
        out["note"] = "no human budget set"
        return out
    share = slice_size / n_routable
    rest = max(0, human - slice_size) / (n_routable - slice_size) if n_routable > slice_size else 0.0
    out["budget_fraction"], out["rest_fraction"] = max(human, slice_size) / n_routable, round(rest, 4)
    if len(rows) < MIN_ITEMS:
        out["note"] = f"{len(rows)} calibration items have both human and judge labels; the forecast needs {MIN_ITEMS}"
        return out
    # Here, not at the top: evaluation brings pandas (~100 MiB), which a web process needs only to forecast.
    from routing import evaluation

    policy = campaign.routing_policy
    names = list(dict.fromkeys(p for p in ("random", policy) if p in evaluation.POLICIES))
    budgets = sorted({*CURVE_BUDGETS, round(rest, 4)})
    try:
        result = evaluation.routing_eval(
            rows, budgets=budgets, policy_names=names, repeats=repeats, seed=seed, single_label_gold=True
        )
    except ValueError as exc:
        out["note"] = str(exc)
        return out
    key = evaluation.budget_key(round(rest, 4))
    curves = {name: result["policies"][name] for name in names}
    curves["oracle"] = result["oracle"]
    out["curve"] = {
        name: [{"budget": b, **points[evaluation.budget_key(b)]} for b in budgets] for name, points in curves.items()
    }
    all_human = result["all_human"]
    out["all_llm"], out["all_human"] = _mix(share, all_human, result["all_llm"]), all_human
    out["random"] = _mix(share, all_human, result["policies"]["random"][key])
    out["oracle"] = _mix(share, all_human, result["oracle"][key])
    if not gate_open and policy != Campaign.RoutingPolicy.ALL_HUMAN:
        # The pass sends every item the judges would have alone to humans (routing.router's gold gate): what
        # the campaign gets is the all-human accuracy, at a human share of every item.
        out["expected"], out["budget_fraction"], out["rest_fraction"] = all_human, 1.0, 1.0
        out["note"] = f"the gold gate sends every item to humans: {gate_reason}"
    elif policy == Campaign.RoutingPolicy.ALL_HUMAN:
        out["expected"] = all_human
    elif policy == Campaign.RoutingPolicy.ALL_LLM:
        out["expected"] = out["all_llm"]
    else:
        out["expected"] = _mix(share, all_human, result["policies"][policy][key])
    return out
