"""The learned routing model (HyPER-style): predict where the judges' label would differ from human consensus.

The one implementation: the live pass (`routing.router`), `routing_eval` (`routing.evaluation`) and the
forecast all fit and score it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from routing.policies import LOW_CONFIDENCE_WEIGHT, UNCERTAINTY_WEIGHTS


@dataclass(frozen=True)
class LearnedRouting:
    """The learned policy's output: per item the probability that the judge label differs from human
    consensus, and the model's weight per standardised feature (positive: the feature makes
    a judge error, hence a human label, more likely; 0: the model does without it), largest magnitude first.
    When the features hold the judge signals, `judge_uncertainty` (the score `uncertainty_score` gives) is
    among them.

    `contributions` (items × `columns`) is each feature's share of an item's log-odds, relative to the
    training mean (the standardised value times its weight: the sum plus the intercept is the item's log-odds),
    and `values` the feature values it came from (lengths as counts, not logarithms): `top_contributions`
    tells per item which features pushed it toward humans or away. Empty when nothing was learned."""

    probabilities: np.ndarray
    importances: dict[str, float]
    columns: list[str] = field(default_factory=list)
    contributions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def top_contributions(self, row: int, k: int = 3) -> list[dict]:
        """Item `row`'s `k` largest contributions by magnitude: `{"feature", "value", "contribution"}` each,
        a positive contribution making a judge error (hence a human label) more likely. Features that give
        nothing (0) are left out; empty when nothing was learned."""
        if not self.columns:
            return []
        shares = self.contributions[row]
        order = np.argsort(-np.abs(shares), kind="stable")[:k]
        return [
            {"feature": self.columns[j], "value": round(float(self.values[row, j]), 4),
             "contribution": round(float(shares[j]), 4)}
            for j in order if shares[j] != 0
        ]  # fmt: skip


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
    *,
    feature_names: Sequence[str] | None = None,
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
    synthetic data without a calibration step); where the budget goes is the routing plan's business
    (`routing.plan`, which ranks by these scores). When the training labels hold fewer than two examples of
    either class there is nothing to learn from: every item gets the training error rate and no importances
    (the live pass does not get this far: `routing.evidence` falls back to judge uncertainty before).
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
        return LearnedRouting(np.full(len(X), rate), {})

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
    inputs = scaler.transform(Z) * weight if len(Z) else np.zeros((0, len(columns)))
    probabilities = model.predict_proba(inputs)[:, 1] if len(Z) else np.zeros(0)
    coefficients = model.coef_[0] * weight  # per standard deviation of each feature
    importances = dict(
        sorted(zip(columns, map(float, coefficients), strict=True), key=lambda kv: abs(kv[1]), reverse=True)
    )
    values = X if len(columns) == X.shape[1] else np.column_stack([X, _uncertainty_column(X, names)])
    return LearnedRouting(
        probabilities,
        importances,
        columns=columns,
        contributions=inputs * model.coef_[0],
        values=values,
    )
