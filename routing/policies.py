"""Routing policies: which items go to humans, to LLM judges, or to both, within a human budget."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Destination = Literal["human", "llm", "both"]
HUMAN, LLM, BOTH = "human", "llm", "both"
Budget = int | float

# Uncertainty weights: each signal outweighs every weaker one put together (8 > 4 + 2 + 1 + 0.5), so the
# ranking is flip > disagreement > parse failure > tie > low confidence, and lower confidence breaks ties.
UNCERTAINTY_WEIGHTS = {"flipped": 8.0, "disagree": 4.0, "parse_failure": 2.0, "tie": 1.0}
LOW_CONFIDENCE_WEIGHT = 0.5


def budget_count(n: int, budget: Budget) -> int:
    """How many of `n` items a budget sends to humans.

    An int (not a bool) is a count of items, capped at `n`; a float is a fraction of `n` in [0, 1], rounded
    to the nearest count with halves up (0.25 of 10 is 3). So the count is never more than `n`. A negative
    count or a fraction outside [0, 1] raises ValueError.
    """
    if isinstance(budget, bool):
        raise ValueError("a budget is a count (int) or a fraction (float), not a bool")
    if isinstance(budget, numbers.Integral):
        if budget < 0:
            raise ValueError(f"a budget count cannot be negative: {budget}")
        return min(int(budget), n)
    fraction = float(budget)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a budget fraction must be in [0, 1]: {budget}")
    return min(math.floor(fraction * n + 0.5), n)


def route_top(scores: Sequence[float] | np.ndarray, budget: Budget, *, seed: int = 0) -> list[str]:
    """Send the `budget` highest-scoring items to humans and the rest to the LLM.

    Equal scores are ordered at random (by `seed`) rather than by position, so a policy whose scores tie a
    lot (every judge certain) does not quietly become "the first items in the file".
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    k = budget_count(n, budget)
    shuffled = np.random.default_rng(seed).permutation(n)
    order = shuffled[np.argsort(-scores[shuffled], kind="stable")]
    destinations = [LLM] * n
    for index in order[:k]:
        destinations[index] = HUMAN
    return destinations


def all_human(n: int) -> list[str]:
    return [HUMAN] * n


def all_llm(n: int) -> list[str]:
    return [LLM] * n


def random_policy(n: int, budget: Budget, seed: int) -> list[str]:
    """The baseline: exactly `budget_count(n, budget)` items, drawn uniformly, go to humans."""
    return route_top(np.zeros(n), budget, seed=seed)


def uncertainty_score(signals: Mapping) -> float:
    """How unsure the judges are about one item (`routing.features.judge_signals`); higher is less sure.

    A weighted sum, flip (8) > judges disagree (4) > parse failure (2) > tie (1) > low confidence
    (0.5 × (1 − confidence), 0 when no confidence was reported): each signal outranks any combination of
    weaker ones.
    """
    score = sum(weight for key, weight in UNCERTAINTY_WEIGHTS.items() if signals.get(key))
    confidence = signals.get("confidence")
    if confidence is not None:
        score += LOW_CONFIDENCE_WEIGHT * (1.0 - min(max(float(confidence), 0.0), 1.0))
    return float(score)


def judge_uncertainty(uncertainty_scores: Sequence[float] | np.ndarray, budget: Budget, *, seed: int = 0) -> list[str]:
    """Judges first: the items with the highest `uncertainty_score` go to humans, within the budget."""
    return route_top(uncertainty_scores, budget, seed=seed)


@dataclass(frozen=True)
class LearnedRouting:
    """The learned policy's output: per item the probability that the judge label differs from human
    consensus, the destinations, and the model's weight per standardised feature (positive: the feature makes
    a judge error, hence a human label, more likely; 0: the model does without it), largest magnitude first.
    When the features hold the judge signals, `judge_uncertainty` (the score `uncertainty_score` gives) is
    among them."""

    probabilities: np.ndarray
    destinations: list[str]
    importances: dict[str, float]


UNCERTAINTY_FEATURE = "judge_uncertainty"
# The judge-signal columns of `routing.features.feature_matrix`, as the `uncertainty_score` keys they hold.
SIGNAL_COLUMNS = {
    "judge_flipped": "flipped",
    "judges_disagree": "disagree",
    "judge_parse_failure": "parse_failure",
    "judge_tie": "tie",
}
CONFIDENCE_COLUMN = "judge_confidence"
# The learned model's prior (see `learned`): the prior variances of the standardised coefficients add up to
# FEATURE_PRIOR_VARIANCE, and the uncertainty score's column is scaled by PRIOR_SCALE, which makes its prior
# PRIOR_SCALE² times wider than another feature's.
FEATURE_PRIOR_VARIANCE = 3.0
PRIOR_SCALE = 10.0


def _uncertainty_column(X: np.ndarray, names: Sequence[str]) -> np.ndarray | None:
    """`uncertainty_score` of every row, from its judge-signal columns; None when X does not hold them all."""
    if not all(name in names for name in [*SIGNAL_COLUMNS, CONFIDENCE_COLUMN]):
        return None
    score = sum(UNCERTAINTY_WEIGHTS[key] * X[:, names.index(column)] for column, key in SIGNAL_COLUMNS.items())
    # An unknown confidence is 1 in the feature matrix: no low-confidence term, as in `uncertainty_score`.
    confidence = np.clip(X[:, names.index(CONFIDENCE_COLUMN)], 0.0, 1.0)
    return score + LOW_CONFIDENCE_WEIGHT * (1.0 - confidence)


def _design(train_X: np.ndarray, X: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The model's inputs: counts (columns never negative that exceed 1 in training: lengths) as log1p, as a
    length acts by its ratio, then the uncertainty score as a last column when X holds the judge signals."""
    counts = (train_X.min(axis=0, initial=0.0) >= 0) & (train_X.max(axis=0, initial=0.0) > 1)
    train_Z, Z = train_X.copy(), X.copy()
    train_Z[:, counts] = np.log1p(train_Z[:, counts])
    Z[:, counts] = np.log1p(np.maximum(Z[:, counts], 0.0))
    train_u, u = _uncertainty_column(train_X, names), _uncertainty_column(X, names)
    if train_u is None:
        return train_Z, Z, list(names)
    return np.column_stack([train_Z, train_u]), np.column_stack([Z, u]), [*names, UNCERTAINTY_FEATURE]


def learned(
    train_X: np.ndarray,
    train_y: Sequence[int] | np.ndarray,
    X: np.ndarray,
    budget: Budget,
    *,
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
) -> LearnedRouting:
    """HyPER-style learned routing: predict where the judge label would differ from human consensus.

    `train_y` is 1 where the judge label differed from human consensus on a training item. The model is a
    logistic regression with a Gaussian prior (L2 penalty) on standardised features, lengths as log1p:
    - the prior is weakly informative and shared: the coefficients' prior variances add up to
      FEATURE_PRIOR_VARIANCE (C = 3 / the number of features that vary), so all features together are
      expected to move the log-odds by about ±1.7 however many there are; more features, each smaller;
    - when X holds the judge signals of `routing.features.feature_matrix`, the judges' uncertainty score
      (`uncertainty_score`) is one more feature with a prior PRIOR_SCALE² = 100 times wider: the model starts
      from the judge_uncertainty ranking and the other features move items past it as far as the data say.
    With little data it stays close to judge_uncertainty instead of fitting noise; with much, the data rule.
    The output is a probability of a judge error, the expected gain of a human label (well calibrated on
    synthetic data without a calibration step), and the budget goes to the highest (equal ones in random
    order, by `seed`). When the training labels hold fewer than two examples of either class there is nothing
    to learn from: every item gets the training error rate and the budget follows the uncertainty score (at
    random when X has no judge signals).
    """
    train_X = np.asarray(train_X, dtype=float)
    train_y = np.asarray(train_y, dtype=int)
    X = np.asarray(X, dtype=float)
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(train_X.shape[1])]
    if len(names) != train_X.shape[1] or X.shape[1] != train_X.shape[1]:
        raise ValueError("train_X, X and feature_names must have the same columns")
    n_minority = int(min(train_y.sum(), len(train_y) - train_y.sum())) if len(train_y) else 0
    if n_minority < 2:
        rate = float(train_y.mean()) if len(train_y) else 0.0
        uncertainty = _uncertainty_column(X, names)
        order = uncertainty if uncertainty is not None else np.zeros(len(X))
        return LearnedRouting(np.full(len(X), rate), route_top(order, budget, seed=seed), {})

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_Z, Z, columns = _design(train_X, X, names)
    scaler = StandardScaler().fit(train_Z)
    weight = np.ones(len(columns))
    if columns[-1] == UNCERTAINTY_FEATURE:
        weight[-1] = PRIOR_SCALE
    varying = int((train_Z[:, weight == 1].std(axis=0) > 0).sum())
    model = LogisticRegression(C=FEATURE_PRIOR_VARIANCE / max(varying, 1), max_iter=1000)
    model.fit(scaler.transform(train_Z) * weight, train_y)
    probabilities = model.predict_proba(scaler.transform(Z) * weight)[:, 1] if len(Z) else np.zeros(0)
    coefficients = model.coef_[0] * weight  # per standard deviation of each feature
    importances = dict(
        sorted(zip(columns, map(float, coefficients), strict=True), key=lambda kv: abs(kv[1]), reverse=True)
    )
    return LearnedRouting(probabilities, route_top(probabilities, budget, seed=seed), importances)


def calibration_slice(n: int, fraction: float = 0.05, seed: int = 0) -> np.ndarray:
    """The sorted indices of the calibration slice: `budget_count(n, fraction)` items at random.

    These items always go to both humans and judges (`with_calibration`), so human–judge agreement is
    measured on every campaign and the learned policy has training data. They spend human labels: a caller
    routing the rest gives the policy the budget left after the slice.
    """
    return np.sort(np.random.default_rng(seed).permutation(n)[: budget_count(n, fraction)])


def with_calibration(destinations: Sequence[str], slice_indices: Sequence[int] | np.ndarray) -> list[str]:
    """Destinations with the calibration slice's items set to "both"."""
    routed = list(destinations)
    for index in slice_indices:
        routed[int(index)] = BOTH
    return routed
