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
    consensus, the destinations, and the standardised logistic coefficients per feature (positive: the
    feature makes a judge error, hence a human label, more likely), largest magnitude first."""

    probabilities: np.ndarray
    destinations: list[str]
    importances: dict[str, float]


def _judge_error_model(train_X: np.ndarray, train_y: np.ndarray, n_minority: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    base = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    # Calibration needs every class in every fold: fewer folds when judge errors are rare.
    model = CalibratedClassifierCV(base, method="sigmoid", cv=min(3, n_minority))
    model.fit(train_X, train_y)
    return model


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

    `train_y` is 1 where the judge label differed from human consensus on a training item. A standardised
    logistic regression, calibrated by CalibratedClassifierCV (sigmoid), gives each item of `X` a probability
    of a judge error — the expected gain of a human label — and the budget goes to the highest. When the
    training labels hold fewer than two examples of either class there is nothing to learn from: every item
    gets the training error rate and the budget is spent at random (by `seed`).
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
        probabilities = np.full(len(X), rate)
        return LearnedRouting(probabilities, route_top(probabilities, budget, seed=seed), {})
    model = _judge_error_model(train_X, train_y, n_minority)
    probabilities = model.predict_proba(X)[:, 1] if len(X) else np.zeros(0)
    # Importances from one model on all training data: the calibrated ensemble averages several.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(train_X)
    coefficients = LogisticRegression(max_iter=1000).fit(scaled, train_y).coef_[0]
    importances = dict(
        sorted(zip(names, map(float, coefficients), strict=True), key=lambda kv: abs(kv[1]), reverse=True)
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
