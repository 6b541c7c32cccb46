"""Routing policies: the one implementation of every routing rule — the budget's count, the stable draw that
breaks ties and makes the random policy, the ranking with its hysteresis margin, the calibration slice, the
judges' uncertainty score and the signals that make it."""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

import numpy as np

Destination = Literal["human", "llm", "both"]
HUMAN, LLM, BOTH = "human", "llm", "both"
Budget = int | float

# The campaign policies (`Campaign.RoutingPolicy` values, which compare equal to these strings).
ALL_HUMAN, ALL_LLM, RANDOM = "all_human", "all_llm", "random"
JUDGE_UNCERTAINTY, LEARNED = "judge_uncertainty", "learned"
JUDGE_POLICIES = (JUDGE_UNCERTAINTY, LEARNED)
BUDGETED_POLICIES = (RANDOM, *JUDGE_POLICIES)

# Uncertainty weights: each signal outweighs every weaker one put together (8 > 4 + 2 + 1 + 0.5), so the
# ranking is flip > disagreement > parse failure > tie > low confidence, and lower confidence breaks ties.
UNCERTAINTY_WEIGHTS = {"flipped": 8.0, "disagree": 4.0, "parse_failure": 2.0, "tie": 1.0}
LOW_CONFIDENCE_WEIGHT = 0.5
# Hysteresis: how much better (in the policy's score) an item must be to take the place of an unlabelled one
# already routed to humans. Uncertainty scores are sums of weights (0.5 and up); learned ones probabilities.
INCUMBENT_MARGIN = {JUDGE_UNCERTAINTY: 0.05, LEARNED: 0.02}


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


def stable_draw(seed: int, key: Hashable) -> float:
    """A uniform number in [0, 1) fixed per (seed, item key): the random policy's score and every policy's
    tie-break, so a second pass ranks the same items the same way and new items fall in at random. The live
    pass draws with the campaign's id as the seed and the item's id as the key."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def stable_draws(seed: int, keys: Sequence[Hashable]) -> np.ndarray:
    return np.fromiter((stable_draw(seed, key) for key in keys), dtype=float, count=len(keys))


def ranking(scores: Sequence[float] | np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Positions, highest score first; equal scores in the order of their draws (lowest first)."""
    return np.lexsort((np.asarray(draws, dtype=float), -np.asarray(scores, dtype=float)))


def with_margin(scores: np.ndarray, incumbent: np.ndarray, policy: str) -> np.ndarray:
    """The scores the ranking compares: an unlabelled item already with humans (`incumbent`) counts
    `INCUMBENT_MARGIN` higher, so it keeps its place unless another beats it by that much (a retrained model
    or a new verdict elsewhere does not reshuffle the queue on every pass)."""
    return np.asarray(scores, dtype=float) + INCUMBENT_MARGIN.get(policy, 0.0) * np.asarray(incumbent, dtype=bool)


def top(scores: Sequence[float] | np.ndarray, count: int, draws: np.ndarray) -> np.ndarray:
    """A boolean mask of the `count` highest-ranked items (`ranking`)."""
    chosen = np.zeros(len(draws), dtype=bool)
    chosen[ranking(scores, draws)[: max(count, 0)]] = True
    return chosen


def route_top(
    scores: Sequence[float] | np.ndarray, budget: Budget, *, seed: int = 0, keys: Sequence[Hashable] | None = None
) -> list[str]:
    """Send the `budget` highest-scoring items to humans and the rest to the LLM.

    Equal scores are ordered by each item's `stable_draw(seed, key)` (keys: the positions unless given)
    rather than by position, so a policy whose scores tie a lot (every judge certain) does not quietly
    become "the first items in the file".
    """
    scores = np.asarray(scores, dtype=float)
    draws = stable_draws(seed, range(len(scores)) if keys is None else keys)
    human = top(scores, budget_count(len(scores), budget), draws)
    return [HUMAN if h else LLM for h in human]


def all_human(n: int) -> list[str]:
    return [HUMAN] * n


def all_llm(n: int) -> list[str]:
    return [LLM] * n


def uncertainty_signals(signals: Mapping) -> list[dict]:
    """The judge signals that raise an item's `uncertainty_score`, each `{"signal", "weight"}` (low confidence
    also with its `value`), strongest first: they add up to the score."""
    fired = [{"signal": key, "weight": weight} for key, weight in UNCERTAINTY_WEIGHTS.items() if signals.get(key)]
    confidence = signals.get("confidence")
    if confidence is not None:
        value = min(max(float(confidence), 0.0), 1.0)
        if value < 1.0:
            fired.append({"signal": "low_confidence", "value": value, "weight": LOW_CONFIDENCE_WEIGHT * (1.0 - value)})
    return fired


def uncertainty_score(signals: Mapping) -> float:
    """How unsure the judges are about one item (`routing.features.judge_signals`); higher is less sure.

    A weighted sum, flip (8) > judges disagree (4) > parse failure (2) > tie (1) > low confidence
    (0.5 × (1 − confidence), 0 when no confidence was reported): each signal outranks any combination of
    weaker ones.
    """
    return float(sum(fired["weight"] for fired in uncertainty_signals(signals)))


def calibration_slice(keys: Sequence[Hashable], count: int, *, seed: int) -> np.ndarray:
    """The sorted positions of `count` of these items drawn at random for the calibration slice: those with
    the lowest `stable_draw(-seed, key)` (a draw of its own, not the ranking's), so the draw is the same on
    every pass and a slice topped up later takes the next items of the same order.

    These items go to both humans and judges, so human–judge agreement is measured on every campaign and the
    learned policy has training data; they spend human labels first.
    """
    order = np.argsort(stable_draws(-seed, keys), kind="stable")
    return np.sort(order[: max(0, min(count, len(keys)))])


def spend(room: int, first: int) -> tuple[int, int]:
    """The budget left after `first` items that go to humans whatever the budget says, and how many of them
    it could not pay for (over budget)."""
    return max(0, room - first), max(0, first - room)
