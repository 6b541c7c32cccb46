"""The final label of each exported item, from its labels: which labels count, the pairwise winner (majority or
Dawid–Skene, or a reviewer's adjudication), rubric means, soft labels.

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
from annotate.stats.aggregate import majority_vote, mean_score, soft_labels

Label = Mapping[str, Any]

RULES = """\
- Which labels count (`source`): "human" the human labels, "judge" the judges' (parse failures never
  count), "hybrid" the human labels when the item has any, otherwise the judges'. A label without a value
  for a key does not count for that key (judges may rate `overall` alone). Human labels of annotators an
  admin excluded, labels submitted faster than the campaign's minimum time and qualification-round answers
  never count (annotate/services/quality/labels.py); how many were left out is in the counts below.
- Pairwise winner (`aggregation`): "majority" takes the strict majority of the *directions* (sign: A, tie,
  B) of the counted `overall` values; "dawid_skene" takes the most probable direction under Dawid & Skene's
  model fitted on every exported item's counted labels (each annotator and each judge with a confusion
  matrix; raters with few labels share one). Without a strict majority (two directions share the top count,
  or the top posteriors tie) the item is *undecided*: it is left out of the pairwise formats and counted as
  `no_majority`, never turned into a tie or a coin flip. The hybrid leaderboard of the statistics treats it
  the same way (annotate/stats/aggregate.py `strict_majority` decides both). A tie is a strict majority for
  "tie".
- Adjudicated items: a reviewer's label on a contested item is the final label for every key it gives
  (`final_source` "adjudicated", the reviewer's reason in `adjudication_reason`; who reviewed is not
  exported). The labels behind it still give `agreement` and `n_labels`, and a minimum agreement does not
  drop an adjudicated item: the review settled it.
- `preference_strength`: the mean `overall` value of the labels on the winning side, in the schema's
  units (−scale…scale, at most −3…3) and with HelpSteer2-Preference's sign: negative means response A
  (HelpSteer2-Preference's response 1) is better, positive response B (response 2), 0 a tie. Its sign is
  always the final direction; how many labels dissented is `agreement`, not a shrunken strength. An
  adjudicated item's strength is the reviewer's value; a Dawid–Skene winner no counted label chose has ±1.
- `agreement`: the share of the counted labels whose direction is the final direction.
- `soft_labels` (when asked for): the counted labels' shares of each `overall` value, from −scale to scale.
- Rubric criteria: the mean score per criterion (per `<criterion>_a` / `<criterion>_b` on a campaign of both
  kinds), over the counted labels that gave one, unless a reviewer's label gives it.
"""

FINAL_SOURCES = ("adjudicated", "majority", "dawid_skene", "mean")


@dataclass(frozen=True, slots=True)
class FinalLabel:
    """One item's aggregate.

    source: "human" or "judge", whose labels were counted; None when no label counted.
    labels: the counted labels, in the order given.
    direction: −1 (A better), 0 (tie), 1 (B better); None without a decided pairwise `overall` value.
    undecided: counted labels gave `overall` values but no strict majority (see the rules): no winner.
    preference_strength, agreement: see the module's rules; None when `direction` is None.
    n_votes: how many counted labels gave an `overall` value.
    scores: rubric key -> mean score (None when no counted label scored it); score_counts: how many did.
    final_source: how the final label was decided: "adjudicated", "majority" or "dawid_skene" (the pairwise
      winner), "mean" (rubric scores alone); None when there is no final label.
    soft_labels: the shares of each `overall` value (−scale…scale) among the counted labels; None without.
    adjudication: the item's adjudication ({"label", "reason", "revision", "adjudicated_at"}) when it counts.
    """

    source: str | None
    labels: tuple[Label, ...]
    direction: int | None
    preference_strength: float | None
    agreement: float | None
    n_votes: int
    scores: dict[str, float | None]
    score_counts: dict[str, int]
    undecided: bool = False
    final_source: str | None = None
    soft_labels: tuple[float, ...] | None = None
    adjudication: Mapping[str, Any] | None = None


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


def _sign(value: float) -> int:
    return int((value > 0) - (value < 0))


def aggregate_items(
    batch: Sequence[Sequence[Label]],
    *,
    schema: dict,
    kind: str,
    source: str,
    aggregation: str = "majority",
    winners: Sequence[float | None] | None = None,
    adjudications: Sequence[Mapping[str, Any] | None] | None = None,
) -> list[FinalLabel]:
    """The final label of each item in `batch` (one sequence of labels per item), in order.

    aggregation "dawid_skene" takes each item's direction from `winners` (aligned with `batch`: the model's
    direction, NaN where its posteriors tie, None where it has no vote; see `build.dawid_skene_winners`).
    `adjudications` (aligned, None where an item has none) gives the reviewers' labels.
    """
    if aggregation not in ("majority", "dawid_skene"):
        raise ValueError(f"aggregation must be 'majority' or 'dawid_skene', got {aggregation!r}")
    if aggregation == "dawid_skene" and (winners is None or len(winners) != len(batch)):
        raise ValueError("aggregation 'dawid_skene' needs the model's winner for every item of the batch")
    chosen = [counted_labels(labels, source) for labels in batch]
    counted = [labels for _, labels in chosen]
    keys = label_schema.label_keys(schema, kind)
    n = len(batch)
    reviews = list(adjudications) if adjudications is not None else [None] * n

    directions = np.full(n, np.nan)
    strengths = np.full(n, np.nan)
    agreements = np.full(n, np.nan)
    votes = np.zeros(n, dtype=int)
    shares = None
    overall = next((key for key in keys if key.pairwise and key.name == label_schema.OVERALL), None)
    if overall is not None and n:
        values = _matrix(counted, label_schema.OVERALL)
        signs = np.sign(values)
        votes = (~np.isnan(values)).sum(axis=1)
        if aggregation == "majority":
            # No strict majority is NaN: undecided, as the leaderboard's (both call `strict_majority`).
            directions = np.asarray(majority_vote(signs, tie_rule="none"), dtype=float)
        else:
            directions = np.array([np.nan if w is None else float(w) for w in winners], dtype=float)
            directions[votes == 0] = np.nan
        for i, review in enumerate(reviews):
            given = (review or {}).get("label", {}).get(label_schema.OVERALL)
            if given is not None:
                directions[i] = _sign(given)
        agreeing = signs == directions[:, None]  # NaN compares unequal, so missing values never agree
        with np.errstate(invalid="ignore", divide="ignore"):
            agreements = np.where(votes > 0, agreeing.sum(axis=1) / np.maximum(votes, 1), np.nan)
        strengths = np.asarray(mean_score(np.where(agreeing, values, np.nan)), dtype=float)
        # A winner no counted label chose (Dawid–Skene may overrule the votes) has the smallest strength.
        strengths = np.where(np.isnan(strengths) & ~np.isnan(directions), directions, strengths)
        scale = np.arange(overall.low, overall.high + 1, dtype=float)
        shares = np.asarray(soft_labels(values, domain=scale), dtype=float)

    rubric_keys = [key.name for key in keys if not key.pairwise]
    means: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for name in rubric_keys:
        values = _matrix(counted, name)
        means[name] = np.asarray(mean_score(values), dtype=float)
        counts[name] = (~np.isnan(values)).sum(axis=1)

    finals = []
    for i, (whose, labels) in enumerate(chosen):
        review = reviews[i]
        given = (review or {}).get("label", {})
        direction = None if np.isnan(directions[i]) else int(directions[i])
        strength = None if direction is None else float(strengths[i])
        if direction is not None and given.get(label_schema.OVERALL) is not None:
            strength = float(given[label_schema.OVERALL])
        scores = {name: _none_if_nan(means[name][i]) for name in rubric_keys}
        scores.update({name: float(given[name]) for name in rubric_keys if given.get(name) is not None})
        if review is not None:
            final_source = "adjudicated"
        elif direction is not None:
            final_source = aggregation
        elif any(value is not None for value in scores.values()):
            final_source = "mean"
        else:
            final_source = None
        finals.append(
            FinalLabel(
                source=whose,
                labels=labels,
                direction=direction,
                preference_strength=strength,
                agreement=None if direction is None or not votes[i] else float(agreements[i]),
                n_votes=int(votes[i]),
                scores=scores,
                score_counts={name: int(counts[name][i]) for name in rubric_keys},
                undecided=direction is None and bool(votes[i] > 0),
                final_source=final_source,
                soft_labels=None if shares is None or not votes[i] else tuple(float(v) for v in shares[i]),
                adjudication=review,
            )
        )
    return finals


def aggregate_item(
    labels: Sequence[Label],
    *,
    schema: dict,
    kind: str,
    source: str,
    aggregation: str = "majority",
    winner: float | None = None,
    adjudication: Mapping[str, Any] | None = None,
) -> FinalLabel:
    """`aggregate_items` for a single item (convenient in tests and one-off use; batches are faster)."""
    return aggregate_items(
        [labels],
        schema=schema,
        kind=kind,
        source=source,
        aggregation=aggregation,
        winners=[winner] if aggregation == "dawid_skene" else None,
        adjudications=[adjudication],
    )[0]
