"""Routing policies: budgets, determinism, the uncertainty order, the learned policy and the calibration slice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from routing import features, learned, policies


@pytest.mark.parametrize(
    ("n", "budget", "expected"),
    [(10, 0.25, 3), (10, 0.0, 0), (10, 1.0, 10), (10, 3, 3), (10, 50, 10), (0, 0.5, 0), (7, 0.5, 4), (4, 1, 1)],
)
def test_budget_count(n, budget, expected):
    assert policies.budget_count(n, budget) == expected


@pytest.mark.parametrize("budget", [-1, -0.1, 1.5, True])
def test_budget_count_rejects_nonsense(budget):
    with pytest.raises(ValueError):
        policies.budget_count(10, budget)


@given(
    n=st.integers(0, 200),
    budget=st.one_of(st.integers(0, 300), st.floats(0, 1)),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_policy_spends_exactly_the_budget(n, budget, seed):
    k = policies.budget_count(n, budget)
    assert k <= n
    scores = np.random.default_rng(seed).integers(0, 3, n)
    for routed in (
        _random(n, budget, seed),
        policies.route_top(scores, budget, seed=seed),
    ):
        assert len(routed) == n
        assert routed.count("human") == k
        assert routed.count("llm") == n - k


def _random(n: int, budget, seed: int) -> list[str]:
    """The random policy as the plan ranks it: by each item's stable draw."""
    return policies.route_top(policies.stable_draws(seed, range(n)), budget, seed=seed)


def test_random_policy_is_deterministic_by_seed():
    assert _random(100, 0.3, 7) == _random(100, 0.3, 7)
    assert _random(100, 0.3, 7) != _random(100, 0.3, 8)


def test_uncertainty_order_is_flip_disagreement_parse_failure_tie_confidence():
    ranked = [
        {"flipped": True},
        {"disagree": True, "parse_failure": True, "tie": True, "confidence": 0.0},
        {"parse_failure": True, "tie": True, "confidence": 0.0},
        {"tie": True, "confidence": 0.0},
        {"confidence": 0.2},
        {"confidence": 0.9},
        {},
    ]
    scores = [policies.uncertainty_score(s) for s in ranked]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


def test_judge_uncertainty_sends_flipped_items_first():
    signals = [{"tie": True}, {"flipped": True}, {"confidence": 0.1}, {"flipped": True}, {"disagree": True}, {}]
    scores = [policies.uncertainty_score(s) for s in signals]
    assert policies.route_top(scores, 2) == ["llm", "human", "llm", "human", "llm", "llm"]
    assert policies.route_top(scores, 3)[4] == "human"


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Judges err mostly on long responses of similar length (the first two columns); the rest is noise."""
    rng = np.random.default_rng(seed)
    long_similar = rng.random(n) < 0.25
    length = np.where(long_similar, rng.normal(800, 100, n), rng.normal(200, 80, n))
    ratio = np.where(long_similar, rng.uniform(0.85, 1.0, n), rng.uniform(0.2, 0.9, n))
    X = np.column_stack([length, ratio, rng.normal(size=n), rng.normal(size=n)])
    wrong = (rng.random(n) < np.where(long_similar, 0.6, 0.05)).astype(int)
    return X, wrong


def test_learned_finds_judge_errors_better_than_random():
    train_X, train_y = _synthetic(400, 0)
    X, wrong = _synthetic(400, 1)
    names = ["response_tokens", "length_ratio", "noise_1", "noise_2"]
    result = learned.learned(train_X, train_y, X, feature_names=names)
    destinations = policies.route_top(result.probabilities, 0.25)
    assert destinations.count("human") == 100
    assert result.probabilities.shape == (400,) and ((result.probabilities >= 0) & (result.probabilities <= 1)).all()
    caught_learned = sum(w for w, d in zip(wrong, destinations, strict=True) if d == "human")
    caught_random = np.mean(
        [sum(w for w, d in zip(wrong, _random(400, 0.25, seed), strict=True) if d == "human") for seed in range(20)]
    )
    assert caught_learned > 2 * caught_random
    assert list(result.importances)[0] in ("response_tokens", "length_ratio")
    assert result.importances["response_tokens"] > 0


def test_learned_is_deterministic():
    train_X, train_y = _synthetic(200, 0)
    X, _ = _synthetic(50, 1)
    first = learned.learned(train_X, train_y, X)
    again = learned.learned(train_X, train_y, X)
    assert first.importances == again.importances
    np.testing.assert_array_equal(first.probabilities, again.probabilities)


def _judged(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of `routing.features.feature_matrix`'s columns: judges flip on 15 % of the items and are wrong on
    80 % of their flips, 10 % otherwise; the other judge signals are quiet, lengths and overlap are noise."""
    rng = np.random.default_rng(seed)
    names = features.feature_names()
    X = rng.lognormal(4, 1, size=(n, len(names)))
    X[:, names.index("length_ratio")] = rng.random(n)
    X[:, names.index("lexical_overlap")] = rng.random(n)
    for column in features.JUDGE_FEATURES:
        X[:, names.index(column)] = 1.0 if column == "judge_confidence" else 0.0
    flipped = rng.random(n) < 0.15
    X[:, names.index("judge_flipped")] = flipped
    wrong = (rng.random(n) < np.where(flipped, 0.8, 0.1)).astype(int)
    return X, wrong, names


def test_learned_starts_from_judge_uncertainty_when_data_are_few():
    """30 training items, 10 noise features: the judges' uncertainty prior keeps the flips mostly first, where
    a plain standardised logistic regression (C = 1) lets the noise push many of them down."""
    X, wrong, names = _judged(1000, 2)
    flipped = X[:, names.index("judge_flipped")] == 1
    k = int(flipped.sum())
    share_learned, share_plain, caught_learned, caught_plain = [], [], [], []
    for seed in range(30):
        train_X, train_y, _ = _judged(30, 100 + seed)
        if train_X[:, names.index("judge_flipped")].sum() < 2:
            continue  # nothing tells flips apart
        result = learned.learned(train_X, train_y, X, feature_names=names)
        human = np.array(policies.route_top(result.probabilities, k, seed=seed)) == "human"
        plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(np.log1p(train_X), train_y)
        plain_human = np.array(policies.route_top(plain.predict_proba(np.log1p(X))[:, 1], k)) == "human"
        share_learned.append(flipped[human].mean())
        share_plain.append(flipped[plain_human].mean())
        caught_learned.append(wrong[human].mean())
        caught_plain.append(wrong[plain_human].mean())
        assert set(result.importances) == {*names, learned.UNCERTAINTY_FEATURE}
        assert result.importances[learned.UNCERTAINTY_FEATURE] > 0
    assert np.mean(share_learned) > 0.9 > np.mean(share_plain) + 0.1
    assert np.mean(caught_learned) > np.mean(caught_plain) + 0.1


def test_learned_probabilities_are_calibrated():
    """Against scikit-learn's reliability curve on held-out items: predicted and observed error rates agree."""
    train_X, train_y = _synthetic(3000, 0)
    X, wrong = _synthetic(3000, 1)
    result = learned.learned(train_X, train_y, X)
    observed, predicted = calibration_curve(wrong, result.probabilities, n_bins=5, strategy="quantile")
    np.testing.assert_allclose(predicted, observed, atol=0.05)
    assert brier_score_loss(wrong, result.probabilities) < brier_score_loss(wrong, np.full(3000, train_y.mean()))


def test_learned_without_both_classes_learns_nothing():
    X, _, names = _judged(50, 3)
    result = learned.learned(X, np.zeros(50), X, feature_names=names)
    assert (result.probabilities == 0).all() and result.importances == {}
    result = learned.learned(X, np.ones(50), X[:10], feature_names=names)
    assert (result.probabilities == 1).all() and result.importances == {} and len(result.probabilities) == 10


def test_the_calibration_slice_is_a_stable_random_draw_that_only_grows():
    # That its items go to both is the plan's part (tests/routing/test_plan.py).
    indices = policies.calibration_slice(list(range(200)), policies.budget_count(200, 0.05), seed=1)
    assert len(indices) == 10 and len(set(indices.tolist())) == 10
    np.testing.assert_array_equal(indices, policies.calibration_slice(list(range(200)), 10, seed=1))
    assert set(policies.calibration_slice(list(range(200)), 12, seed=1).tolist()) > set(indices.tolist())
