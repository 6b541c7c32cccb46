"""Whether one item's human labels settle it: the dispute rule dynamic overlap acts on (pure, no database).

An item is *disputed* when its labels do not agree well enough to stand as its final label:

- pairwise: on the `overall` aspect, the side each label favours (A, tie, B) has no
  strict majority (a split), or the share of labels on the majority side is below the threshold;
- rubric: the first criterion has no strict majority, or the labels lie too far apart — a Krippendorff-style
  interval distance, the mean pairwise |a − b| over the scale's range, averaged over every criterion, above
  1 − threshold;
- both kinds on one item: disputed when either rule says so.

The majority is `aggregate.majority_vote` with the "none" tie rule: the same majority the exports use.
Laws (tests/stats/test_consensus.py): identical labels never disagree; adding a label on the consensus (the
majority side, each rubric score at a median) never turns agreeing labels into disputed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from annotate import schema as label_schema
from annotate.stats.aggregate import majority_vote

Label = Mapping[str, int]


@dataclass(frozen=True)
class Consensus:
    """The verdict on one item's labels.

    `reason`: "" (settled), "split" (no strict majority on the primary key), "low_agreement" (majority
    share below the threshold) or "distance" (rubric scores too far apart). `agreement` is the share on
    the most chosen side (pairwise), 1 − the distance (rubric), the lower of the two for both kinds; None
    without labels. `majority` is the primary key's strict majority (a side −1/0/1 for pairwise, a score
    for rubric), None on a split.
    """

    disputed: bool
    reason: str
    agreement: float | None
    majority: int | None
    key: str


def primary_key(*, schema: dict, kind: str) -> label_schema.LabelKey:
    """The key whose majority decides an item: pairwise `overall` (every pairwise schema has it, and a
    campaign of both kinds leads with it); rubric the first criterion."""
    keys = label_schema.label_keys(schema, kind)
    return next((k for k in keys if k.pairwise and k.name == label_schema.OVERALL), keys[0])


def _sign(value: float) -> int:
    return int((value > 0) - (value < 0))


def _strict_majority(values: Sequence[float]) -> float | None:
    """The one most frequent value, or None on a tie at the top (`majority_vote`, tie rule "none")."""
    if not values:
        return None
    top = majority_vote(np.asarray([values], dtype=float), tie_rule="none")[0]
    return None if np.isnan(top) else float(top)


def _interval_distance(values: Sequence[int], low: int, high: int) -> float | None:
    """Mean pairwise |a − b| over the scale range: 0 when all agree, 1 when half sit at each end."""
    if len(values) < 2 or high == low:
        return None
    array = np.asarray(values, dtype=float)
    gaps = np.abs(array[:, None] - array[None, :])
    n = len(array)
    return float(gaps.sum() / (n * (n - 1)) / (high - low))


def rubric_distance(labels: Sequence[Label], *, schema: dict, kind: str) -> float | None:
    """`_interval_distance` averaged over the rubric keys that have two labels or more; None without any."""
    distances = []
    for key in label_schema.label_keys(schema, kind):
        if key.pairwise:
            continue
        values = [label[key.name] for label in labels if label.get(key.name) is not None]
        distance = _interval_distance(values, key.low, key.high)
        if distance is not None:
            distances.append(distance)
    return float(np.mean(distances)) if distances else None


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:
        raise ValueError(f"agreement threshold must be between 0 and 1, got {threshold!r}")


def label_consensus(labels: Sequence[Label], *, schema: dict, kind: str, threshold: float) -> Consensus:
    """Whether these labels (one item's human labels, {key: int} each) disagree beyond `threshold`."""
    _check_threshold(threshold)
    key = primary_key(schema=schema, kind=kind)
    values = [label[key.name] for label in labels if label.get(key.name) is not None]
    if not values:
        return Consensus(disputed=False, reason="", agreement=None, majority=None, key=key.name)
    shown = [_sign(v) for v in values] if key.pairwise else list(values)
    majority = _strict_majority(shown)
    agreement = None
    reason = ""
    if key.pairwise:
        agreement = max(shown.count(side) for side in set(shown)) / len(shown)
        if majority is None:
            reason = "split"
        elif agreement < threshold:
            reason = "low_agreement"
    elif majority is None:
        reason = "split"
    distance = rubric_distance(labels, schema=schema, kind=kind)
    if distance is not None:
        closeness = 1.0 - distance
        agreement = closeness if agreement is None else min(agreement, closeness)
        # The same threshold, said as a distance: apart by more than 1 − threshold of the scale.
        if not reason and distance > 1.0 - threshold:
            reason = "distance"
    if agreement is None:
        agreement = 1.0  # one rubric label: nothing to disagree with
    return Consensus(
        disputed=bool(reason),
        reason=reason,
        agreement=agreement,
        majority=None if majority is None else int(majority),
        key=key.name,
    )


def verdict_differs(
    labels: Sequence[Label], verdict: Label | None, *, schema: dict, kind: str, threshold: float
) -> bool:
    """Whether the humans' strict majority on the primary key differs from the judges' verdict there.

    Pairwise: they favour different sides. Rubric: the scores lie further apart than the humans may
    (more than 1 − threshold of the scale). False without a verdict on that key or without a human
    majority (a split is disputed by `label_consensus` already).
    """
    _check_threshold(threshold)
    key = primary_key(schema=schema, kind=kind)
    if not verdict or verdict.get(key.name) is None:
        return False
    values = [label[key.name] for label in labels if label.get(key.name) is not None]
    shown = [_sign(v) for v in values] if key.pairwise else list(values)
    majority = _strict_majority(shown)
    if majority is None:
        return False
    judged = verdict[key.name]
    if key.pairwise:
        return _sign(judged) != int(majority)
    if key.high == key.low:
        return False
    return abs(judged - majority) / (key.high - key.low) > 1.0 - threshold
