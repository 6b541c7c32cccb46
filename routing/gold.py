"""Judges' gold accuracy on a campaign's gold items, and which judges may label items alone (the gold gate).

One standard for humans and judges: a label is right when `annotate.stats.gold.gold_match` says it matches
the item's gold label, and accuracy is the share of right answers over all answers (pooled, not averaged per
item); the humans' side is `annotate.services.quality.gold`.

Judges are scored on the gold items in both orders. Every stored judgment is one answer — each order and
each sample of a (judge, prompt version) counts on its own, so a pairwise judge answers 2 × items × samples
times — because a judge that is right in one order only is right half of the time a user would rely on it.
Judgments are stored in the item's own A/B order (the run maps a swapped verdict back when it stores it:
`routing.judges.verdicts.verdict_to_item`), so they compare with the gold label as they are. Beside the
accuracy, `orders` tells how the two orders compare: pairs where both were right, where only one was
(position bias on gold) and the share of pairs whose outcome does not depend on the order. Only the
judgments routing reads count (the judge's current prompt; imported judges' labels always).

`campaign.judge_gold_threshold` gates `llm`-only routing: None sets no requirement; otherwise a judge needs
at least that accuracy, and a judge with no gold answers is not qualified (nothing shows it is good enough).
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from annotate.models import Annotation, Campaign, Judge
from annotate.stats.gold import gold_match
from routing.reads import stale_judgments

ORDER_NAMES = {False: "original", True: "swapped"}


def _share(correct: int, answered: int) -> float | None:
    return correct / answered if answered else None


def _percent(value: float) -> str:
    return f"{value:.0%}"


def routing_judges(*, campaign: Campaign):
    """The judges whose labels an item routed to the judges alone gets: the campaign's active judges with an
    endpoint, and imported judges whose labels the campaign holds."""
    imported = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE, judge__imported=True)
    return Judge.objects.filter(
        Q(campaigns=campaign, active=True, imported=False) | Q(pk__in=imported.values("judge_id"))
    ).distinct()


def judge_gold_scores(*, campaign: Campaign) -> dict[int, dict]:
    """Per judge id: `{"judge", "name", "answered", "correct", "accuracy", "items", "orders"}`.

    `answered` counts judgments (each order and sample; a parse failure is a wrong answer), `items` the gold
    items judged. `orders`: `{"original": {"answered", "correct"}, "swapped": {...}, "pairs", "both_correct",
    "one_correct", "consistency"}` — a pair is one (item, prompt version, sample) judged in both orders;
    `consistency` is the share of pairs right or wrong in both orders alike (None without pairs). The
    campaign's judges and the judges of `routing_judges` appear even with no gold answer (accuracy None).
    """
    schema, kind = campaign.label_schema, campaign.kind
    judgments = (
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE, item__gold_label__isnull=False)
        .exclude(stale_judgments(campaign))
        .values_list(
            "judge_id", "item_id", "prompt_version", "sample_index", "position_swapped", "label", "item__gold_label"
        )
    )
    scores: dict[int, dict] = {}
    outcomes: dict[int, dict[tuple, dict[bool, bool]]] = defaultdict(lambda: defaultdict(dict))
    items: dict[int, set] = defaultdict(set)
    for judge_id, item_id, version, sample, swapped, label, gold in judgments.iterator(chunk_size=2000):
        correct = bool(gold_match(label=label, gold=gold, schema=schema, kind=kind))
        outcomes[judge_id][(item_id, version, sample)][bool(swapped)] = correct
        items[judge_id].add(item_id)
    judges = Judge.objects.filter(
        Q(pk__in=list(outcomes)) | Q(campaigns=campaign) | Q(pk__in=routing_judges(campaign=campaign))
    )
    for judge_id, name in judges.distinct().values_list("id", "name"):
        by_order = {flag: {"answered": 0, "correct": 0} for flag in ORDER_NAMES}
        pairs = both = one = 0
        for orders in outcomes.get(judge_id, {}).values():
            for swapped, correct in orders.items():
                by_order[swapped]["answered"] += 1
                by_order[swapped]["correct"] += int(correct)
            if len(orders) == 2:
                pairs += 1
                right = sum(orders.values())
                both += right == 2
                one += right == 1
        answered = sum(o["answered"] for o in by_order.values())
        correct = sum(o["correct"] for o in by_order.values())
        scores[judge_id] = {
            "judge": judge_id,
            "name": name,
            "answered": answered,
            "correct": correct,
            "accuracy": _share(correct, answered),
            "items": len(items.get(judge_id, ())),
            "orders": {
                **{ORDER_NAMES[flag]: counts for flag, counts in by_order.items()},
                "pairs": pairs,
                "both_correct": both,
                "one_correct": one,
                "consistency": _share(pairs - one, pairs),
            },
        }
    return scores


def llm_only_allowed(*, campaign: Campaign, judge: Judge, scores: dict[int, dict] | None = None) -> tuple[bool, str]:
    """Whether items may go to this judge alone, and why (a sentence for pages, decisions and errors).

    `scores`: `judge_gold_scores` already computed (a pass asks for many judges at once).
    """
    threshold = campaign.judge_gold_threshold
    if threshold is None:
        return True, "the campaign asks judges for no gold accuracy"
    scores = judge_gold_scores(campaign=campaign) if scores is None else scores
    score = scores.get(judge.pk) or {"answered": 0, "correct": 0, "accuracy": None}
    wanted = f"the campaign's {_percent(threshold)}"
    if not score["answered"]:
        return False, (
            f"judge {judge.name} has no answer on this campaign's gold items, and {wanted} gold accuracy is "
            "required before items go to judges alone: run the judges on the gold items"
        )
    measured = (
        f"judge {judge.name} scored {_percent(score['accuracy'])} on gold "
        f"({score['correct']} of {score['answered']} answers, both orders)"
    )
    if score["accuracy"] < threshold:
        return False, f"{measured}, below {wanted}"
    return True, f"{measured}, at or above {wanted}"


def llm_only_gate(*, campaign: Campaign, scores: dict[int, dict] | None = None) -> tuple[bool, str]:
    """Whether the campaign may route items to the judges alone: every judge of `routing_judges` qualifies.

    The one gate for routing passes, imports, overrides and the forecast. The reason names each judge
    that falls short (or says why every judge may).
    """
    if campaign.judge_gold_threshold is None:
        return True, "the campaign asks judges for no gold accuracy"
    judges = list(routing_judges(campaign=campaign).order_by("name"))
    if not judges:
        return True, "the campaign has no judge to hold to the gold"
    scores = judge_gold_scores(campaign=campaign) if scores is None else scores
    verdicts = [llm_only_allowed(campaign=campaign, judge=judge, scores=scores) for judge in judges]
    refused = [reason for allowed, reason in verdicts if not allowed]
    if refused:
        return False, "; ".join(refused)
    return True, "; ".join(reason for _, reason in verdicts)


def judges_gold(*, campaign: Campaign) -> dict:
    """The judges' side of the gold report: `{"judges": [judge_gold_scores row + "qualified", "reason"] by name,
    "llm_only": {"allowed", "reason"}}`."""
    scores = judge_gold_scores(campaign=campaign)
    judges = []
    for score in sorted(scores.values(), key=lambda s: s["name"]):
        allowed, reason = llm_only_allowed(
            campaign=campaign, judge=Judge(pk=score["judge"], name=score["name"]), scores=scores
        )
        judges.append({**score, "qualified": allowed, "reason": reason})
    allowed, reason = llm_only_gate(campaign=campaign, scores=scores)
    return {"judges": judges, "llm_only": {"allowed": allowed, "reason": reason}}
