"""Routing policies: which items go to humans, to LLM judges, or to both, within a human budget."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
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
