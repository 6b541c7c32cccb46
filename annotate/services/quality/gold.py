"""Gold accuracy of humans on a campaign's gold items, and beside it the judges' (`routing.gold`, through
`routing.api`): the report the dataset card and the pages show.

A label is right when `annotate.stats.gold.gold_match` says it matches the item's gold label, and accuracy
is the share of right answers over all answers (pooled, not averaged per item): the same standard for both.
"""

from __future__ import annotations

from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign
from routing.api import judges_gold


def _share(correct: int, answered: int) -> float | None:
    return correct / answered if answered else None


def human_gold_scores(*, campaign: Campaign) -> dict:
    """Humans on the same gold: `{"answered", "correct", "accuracy", "n_annotators", "counted", "annotators"}`.

    From each human gold label's `gold_correct` (scored when it was submitted, by the same `gold_match`).
    `counted` (`{"answered", "correct", "accuracy", "n_annotators"}`) pools the annotators whose labels count
    (an admin did not exclude them); `annotators` lists `{"annotator", "username", "answered", "correct",
    "accuracy", "qualification", "attention", "excluded"}`, `qualification` / `attention` being
    `{"answered", "correct"}` per kind of gold lease.
    """
    rows = (
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.HUMAN, gold_correct__isnull=False)
        .values_list("annotator_id", "annotator__username", "gold_correct", "assignment__purpose")
        .iterator(chunk_size=2000)
    )
    excluded = set(
        AnnotatorStanding.objects.filter(campaign=campaign, excluded=True).values_list("annotator_id", flat=True)
    )
    people: dict[int, dict] = {}
    for annotator_id, username, correct, purpose in rows:
        person = people.setdefault(
            annotator_id,
            {
                "annotator": annotator_id,
                "username": username,
                "answered": 0,
                "correct": 0,
                "qualification": {"answered": 0, "correct": 0},
                "attention": {"answered": 0, "correct": 0},
                "excluded": annotator_id in excluded,
            },
        )
        person["answered"] += 1
        person["correct"] += int(correct)
        # A gold label without its lease (imported) is an attention check: it was not a qualification round.
        phase = "qualification" if purpose == Assignment.Purpose.QUALIFICATION else "attention"
        person[phase]["answered"] += 1
        person[phase]["correct"] += int(correct)
    annotators = sorted(people.values(), key=lambda p: p["username"] or "")
    for person in annotators:
        person["accuracy"] = _share(person["correct"], person["answered"])

    def pooled(group: list[dict]) -> dict:
        answered, correct = sum(p["answered"] for p in group), sum(p["correct"] for p in group)
        return {
            "answered": answered,
            "correct": correct,
            "accuracy": _share(correct, answered),
            "n_annotators": len(group),
        }

    return {
        **pooled(annotators),
        "counted": pooled([p for p in annotators if not p["excluded"]]),
        "annotators": annotators,
    }


def gold_accuracy(*, campaign: Campaign) -> dict:
    """Humans' and judges' gold accuracy side by side, for the dataset card and the pages.

    `{"threshold", "gold_items", "humans": human_gold_scores, "judges": [judge_gold_scores row +
    "qualified", "reason"], "llm_only": {"allowed", "reason"}}`, judges by name (`routing.gold`).
    """
    return {
        "threshold": campaign.judge_gold_threshold,
        "gold_items": campaign.items.filter(gold_label__isnull=False).count(),
        "humans": human_gold_scores(campaign=campaign),
        **judges_gold(campaign=campaign),
    }
