"""What the judges say about an item, for any campaign kind, and whether they agree with human consensus.

Pure: judgments in routing_eval's `judge_labels` shape (`routing.reads.judge_labels`) in, signals out.
Pairwise labels go through `routing.features.judge_signals` (both orders, then the judges). Rubric labels
are averaged; judges (or orders) a point or more apart disagree. A campaign of both kinds labels the pair
(the pairwise aspects: flips, disagreement, ties as for pairwise) and each response on the rubric
(`<criterion>_a` / `<criterion>_b`: disagreement as for rubric).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from routing.evaluation import strict_majority
from routing.features import judge_signals
from routing.judges.verdicts import aggregate_judgments

PAIRWISE, RUBRIC, BOTH = "pairwise", "rubric", "both"


def by_key(labels: Sequence[Mapping]) -> dict[str, list[int]]:
    """Every value each key takes across these labels."""
    values: dict[str, list[int]] = defaultdict(list)
    for label in labels:
        for key, value in label.items():
            values[key].append(value)
    return values


def pairwise_keys(schema: Mapping) -> set[str]:
    return {aspect["name"] for aspect in (schema.get("pairwise") or {}).get("aspects") or []}


def _part(label: Mapping | None, keys: set[str], *, inside: bool) -> dict | None:
    if label is None:
        return None
    return {key: value for key, value in label.items() if (key in keys) == inside}


def rubric_signals(entries: Sequence[Mapping], schema: Mapping | None) -> dict:
    """Judge signals of rubric labels: the judgments' mean, whether any criterion spreads a point or more
    (across judges and, when judged in both orders, across orders), parse failures, the lowest confidence."""
    labels = [label for e in entries for label in (e.get("label"), e.get("label_swapped")) if label is not None]
    failed = sum(1 for e in entries for key in ("label", "label_swapped") if key in e and e[key] is None)
    aggregate = aggregate_judgments([(label, None) for label in labels], campaign_schema=schema, method="mean")
    confidences = [float(e["confidence"]) for e in entries if e.get("confidence") is not None]
    return {
        "label": aggregate.label,
        "flipped": False,
        "disagree": any(max(values) - min(values) >= 1 for values in by_key(labels).values()),
        "parse_failure": failed > 0 or aggregate.label is None,
        "tie": False,
        "confidence": min(confidences) if confidences else None,
    }


def _both_signals(entries: Sequence[Mapping], schema: Mapping) -> dict:
    """A campaign of both kinds: the pairwise aspects as pairwise, the `_a`/`_b` criteria as rubric; the label
    is both parts together (None unless both have one)."""
    keys = pairwise_keys(schema)
    pair = [{k: _part(v, keys, inside=True) if k.startswith("label") else v for k, v in e.items()} for e in entries]
    rubric = [{k: _part(v, keys, inside=False) if k.startswith("label") else v for k, v in e.items()} for e in entries]
    pairwise, scored = judge_signals(pair), rubric_signals(rubric, schema)
    label = {**pairwise["label"], **scored["label"]} if pairwise["label"] and scored["label"] else None
    return {
        **pairwise,
        "label": label,
        "disagree": pairwise["disagree"] or scored["disagree"],
        "parse_failure": pairwise["parse_failure"] or scored["parse_failure"],
    }


def signals_for(kind: str, schema: Mapping, entries: Sequence[Mapping]) -> dict:
    """What the judges say about one item of a campaign of this kind and label schema: the keys of
    `routing.features.judge_signals` (label, flipped, disagree, parse_failure, tie, confidence)."""
    if kind == PAIRWISE:
        return judge_signals(entries)
    if kind == BOTH:
        return _both_signals(entries, schema)
    return rubric_signals(entries, schema)


def _direction_agrees(judge_label: Mapping | None, labels: Sequence[Mapping]) -> bool | None:
    consensus = strict_majority([[float(np.sign(label["overall"])) for label in labels]])[0]
    if math.isnan(consensus):
        return None
    return judge_label is not None and bool(float(np.sign(judge_label["overall"])) == consensus)


def _within_a_point(judge_label: Mapping | None, labels: Sequence[Mapping], keys: set[str] | None = None) -> bool:
    if judge_label is None:
        return False
    values = {key: v for key, v in by_key(labels).items() if keys is None or key in keys}
    return all(bool(abs(judge_label.get(key, math.inf) - float(np.mean(v))) < 1.0) for key, v in values.items())


def judge_agrees(kind: str, schema: Mapping, judge_label: Mapping | None, humans: Sequence[Mapping]) -> bool | None:
    """Whether the judges' label agrees with human consensus; None when the humans have no consensus.

    Pairwise: the overall direction (A / tie / B) equals the strict majority of the human labels'
    directions. Rubric: every criterion is within one point of the humans' mean. Both kinds: the direction
    agrees and every `_a`/`_b` criterion is within one point. An unusable judge label (None) disagrees.
    """
    labels = [h["label"] for h in humans if h.get("label")]
    if not labels:
        return None
    if kind == RUBRIC:
        return _within_a_point(judge_label, labels)
    direction = _direction_agrees(judge_label, labels)
    if kind == PAIRWISE or direction is None:
        return direction
    rubric_keys = set(by_key(labels)) - pairwise_keys(schema)
    return direction and _within_a_point(judge_label, labels, rubric_keys)
