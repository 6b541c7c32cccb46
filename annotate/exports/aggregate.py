"""The final label of each exported item, from its labels: which labels count, the pairwise winner, rubric means.

Labels are plain dicts (see `annotate.exports`), values in the item's own A/B orientation. Items are
aggregated a batch at a time so that `annotate.stats.aggregate`'s vectorised functions do the counting:
one call per batch of a thousand items costs what one call per item would cost for a handful.

The rules are `RULES` below, which every dataset card quotes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotate import schema as label_schema
from annotate.stats.aggregate import majority_vote, mean_score

Label = Mapping[str, Any]

RULES = """\
- Which labels count (`source`): "human" the human labels, "judge" the judges' (parse failures never
  count), "hybrid" the human labels when the item has any, otherwise the judges'. A label without a value
  for a key does not count for that key (judges may rate `overall` alone).
- Pairwise winner: the strict majority of the *directions* (sign: A, tie, B) of the `overall` values.
  When two directions share the top count there is no majority, and the final label is a tie: such an item
  goes where ties go (their own split, or dropped) rather than to a coin flip.
- `preference_strength`: the mean `overall` value of the labels on the winning side, in the schema's
  units (−scale…scale, at most −3…3) and with HelpSteer2-Preference's sign: negative means response A
  (HelpSteer2-Preference's response 1) is better, positive response B (response 2), 0 a tie. Its sign is
  always the final direction; how many labels dissented is `agreement`, not a shrunken strength.
- `agreement`: the share of the counted labels whose direction is the final direction (for a tie without a
  majority, the share that said "tie", often 0).
- Rubric criteria: the mean score per criterion (per `<criterion>_a` / `<criterion>_b` on a campaign of both
  kinds), over the counted labels that gave one.
"""


@dataclass(frozen=True, slots=True)
class FinalLabel:
    """One item's aggregate.

    source: "human" or "judge", whose labels were counted; None when no label counted.
    labels: the counted labels, in the order given.
    direction: −1 (A better), 0 (tie), 1 (B better); None without a pairwise `overall` value.
    preference_strength, agreement: see the module's rules; None when `direction` is None.
    n_votes: how many counted labels gave an `overall` value.
    scores: rubric key -> mean score (None when no counted label scored it); score_counts: how many did.
    """

    source: str | None
    labels: tuple[Label, ...]
    direction: int | None
    preference_strength: float | None
    agreement: float | None
    n_votes: int
    scores: dict[str, float | None]
    score_counts: dict[str, int]


def usable(label: Label) -> bool:
    """A label that can count: parsed, and with at least one value."""
    return not label.get("parse_failed") and bool(label.get("label"))


def counted_labels(labels: Sequence[Label], source: str) -> tuple[str | None, tuple[Label, ...]]:
    """The labels `source` counts for one item, and whose they are ("human" or "judge"; None if none)."""
    humans = tuple(label for label in labels if label.get("source") == "human" and usable(label))
    if source == "human" or (source == "hybrid" and humans):
        return ("human" if humans else None), humans
    if source not in ("judge", "hybrid"):
        raise ValueError(f"source must be 'human', 'judge' or 'hybrid', got {source!r}")
    judges = tuple(label for label in labels if label.get("source") == "judge" and usable(label))
    return ("judge" if judges else None), judges


def _matrix(batch: Sequence[tuple[Label, ...]], key: str) -> np.ndarray:
    """Items × labels of one key's values (NaN where a label has none), for the stats functions."""
    width = max((len(labels) for labels in batch), default=0)
    matrix = np.full((len(batch), max(width, 1)), np.nan)
    for row, labels in enumerate(batch):
        for column, label in enumerate(labels):
            value = label["label"].get(key)
            if value is not None:
                matrix[row, column] = value
    return matrix


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def aggregate_items(batch: Sequence[Sequence[Label]], *, schema: dict, kind: str, source: str) -> list[FinalLabel]:
    """The final label of each item in `batch` (one sequence of labels per item), in order."""
    chosen = [counted_labels(labels, source) for labels in batch]
    counted = [labels for _, labels in chosen]
    keys = label_schema.label_keys(schema, kind)
    n = len(batch)

    directions = np.full(n, np.nan)
    strengths = np.full(n, np.nan)
    agreements = np.full(n, np.nan)
    votes = np.zeros(n, dtype=int)
    if any(key.pairwise and key.name == label_schema.OVERALL for key in keys) and n:
        values = _matrix(counted, label_schema.OVERALL)
        signs = np.sign(values)
        # tie_rule="tie": directions sharing the top count make the final label a tie (see the module's rules).
        directions = np.asarray(majority_vote(signs, tie_rule="tie"), dtype=float)
        votes = (~np.isnan(values)).sum(axis=1)
        agreeing = signs == directions[:, None]  # NaN compares unequal, so missing values never agree
        with np.errstate(invalid="ignore", divide="ignore"):
            agreements = np.where(votes > 0, agreeing.sum(axis=1) / np.maximum(votes, 1), np.nan)
        strengths = np.asarray(mean_score(np.where(agreeing, values, np.nan)), dtype=float)
        # A tie without a majority has no label on the winning side: its strength is the tie's, 0.
        strengths = np.where(np.isnan(strengths) & ~np.isnan(directions), 0.0, strengths)

    rubric_keys = [key.name for key in keys if not key.pairwise]
    means: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for name in rubric_keys:
        values = _matrix(counted, name)
        means[name] = np.asarray(mean_score(values), dtype=float)
        counts[name] = (~np.isnan(values)).sum(axis=1)

    finals = []
    for i, (whose, labels) in enumerate(chosen):
        direction = None if np.isnan(directions[i]) else int(directions[i])
        finals.append(
            FinalLabel(
                source=whose,
                labels=labels,
                direction=direction,
                preference_strength=None if direction is None else float(strengths[i]),
                agreement=None if direction is None else float(agreements[i]),
                n_votes=int(votes[i]),
                scores={name: _none_if_nan(means[name][i]) for name in rubric_keys},
                score_counts={name: int(counts[name][i]) for name in rubric_keys},
            )
        )
    return finals


def aggregate_item(labels: Sequence[Label], *, schema: dict, kind: str, source: str) -> FinalLabel:
    """`aggregate_items` for a single item (convenient in tests and one-off use; batches are faster)."""
    return aggregate_items([labels], schema=schema, kind=kind, source=source)[0]
