"""Model leaderboards from pairwise comparisons: Bradley–Terry ratings with bootstrap intervals, win rates.

A comparison is one pairwise label on an item whose responses came from two models: columns model_a,
model_b and outcome, the sign of the label (negative: A wins, 0: a tie, positive: B wins; the raw
pairwise value works too, only its sign is used).

Ratings are on the scale Chatbot Arena reports: P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)), and a
tie counts as half a win for each side. They are anchored so that their mean is 1000: only differences
mean anything, and a model's rating moves when other models join.

`hybrid_outcomes` picks the comparisons of the hybrid board: one final direction per item, by the exports'
rule, so that an item without a strict majority is left out of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from annotate.stats.raters import majority_by_item

SCALE = 400.0
BASE = 10.0
ANCHOR = 1000.0  # the mean rating
MIN_COMPARISONS = 10


@dataclass
class Ratings:
    """Bradley–Terry ratings.

    table: one row per model, best first. Columns: rating, n (comparisons), wins, ties, losses,
      component (which connected part of the comparison graph the model is in, 0 for the largest),
      and, from `bradley_terry_bootstrap`, ci_low and ci_high.
    notes: what a reader of the table must know (few comparisons, perfect records, disconnected graph).
    """

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """The leaderboard in the stats snapshot's shape: [{"model", "rating", "ci95": [lo, hi] | None, "n"}]."""
        has_ci = "ci_low" in self.table
        return [
            {
                "model": model,
                "rating": float(row["rating"]),
                "ci95": [float(row["ci_low"]), float(row["ci_high"])] if has_ci else None,
                "n": int(row["n"]),
            }
            for model, row in self.table.iterrows()
        ]


@dataclass
class _Comparisons:
    """Comparisons collapsed to distinct (pair, outcome) triplets, each pair stored with first < second."""

    models: pd.Index
    first: np.ndarray  # model index of the pair's first model, per triplet
    second: np.ndarray
    score: np.ndarray  # the first model's score: 1 win, 0.5 tie, 0 loss
    count: np.ndarray  # how many comparisons the triplet stands for
    notes: list[str]


def _collapse(comparisons: pd.DataFrame) -> _Comparisons:
    missing = [c for c in ("model_a", "model_b", "outcome") if c not in comparisons.columns]
    if missing:
        raise ValueError(f"the comparisons frame lacks column(s) {missing}")
    notes = []
    frame = comparisons[["model_a", "model_b", "outcome"]]
    usable = frame["outcome"].notna() & frame["model_a"].notna() & frame["model_b"].notna()
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} comparison(s) without an outcome or a model are left out")
    frame = frame[usable]
    same = frame["model_a"] == frame["model_b"]
    if same.any():
        notes.append(f"{int(same.sum())} comparison(s) of a model with itself are left out")
        frame = frame[~same]
    codes, models = pd.factorize(pd.concat([frame["model_a"], frame["model_b"]]), sort=True)
    a, b = codes[: len(frame)], codes[len(frame) :]
    sign = np.sign(frame["outcome"].to_numpy(dtype=float))
    score_a = (1 - sign) / 2  # -1 (A wins) -> 1, 0 -> 0.5, +1 -> 0
    first, second = np.minimum(a, b), np.maximum(a, b)
    score = np.where(a < b, score_a, 1 - score_a)
    keys = pd.DataFrame({"first": first, "second": second, "score": score})
    triplets = keys.value_counts().sort_index().reset_index(name="count")
    return _Comparisons(
        models=models,
        first=triplets["first"].to_numpy(),
        second=triplets["second"].to_numpy(),
        score=triplets["score"].to_numpy(dtype=float),
        count=triplets["count"].to_numpy(dtype=float),
        notes=notes,
    )


def _fit(wins: np.ndarray, games: np.ndarray, *, prior: float, max_iter: int = 100, tol: float = 1e-9) -> np.ndarray:
    """Bradley–Terry maximum likelihood for a batch of tournaments at once; returns log10 strengths (B × M).

    wins: B × M (ties counted half); games: B × M × M comparisons per pair. Every model also plays
    `prior` virtual games, drawn, against a fixed reference of strength 1: this keeps a model that
    never lost (or never won) finite and gives models in separate components of the comparison graph a
    common anchor; with real data it moves ratings by a fraction of a point. With it the log-likelihood
    is strictly concave, so Newton's method converges in a few steps (Hunter's MM iteration, the other
    textbook choice, crawls here: the prior alone pins the common level, and MM moves it by tiny steps).
    """
    theta = np.zeros_like(wins)  # natural-log strengths
    target = wins + prior / 2
    diagonal = np.arange(wins.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(row beats column)
        p_reference = 1.0 / (1.0 + np.exp(-theta))
        gradient = target - (games * p).sum(axis=2) - prior * p_reference
        curvature = games * p * (1 - p)
        information = -curvature  # the negative Hessian: a graph Laplacian plus the prior's diagonal
        information[:, diagonal, diagonal] = curvature.sum(axis=2) + prior * p_reference * (1 - p_reference)
        step = np.linalg.solve(information, gradient[..., None])[..., 0]
        # Damped: far from the optimum (a model with a near-perfect record) a full step can overshoot.
        largest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(largest, 1e-300))
        theta += step
        if largest.max(initial=0.0) < tol:
            break
    return theta / np.log(BASE)


def _tables(data: _Comparisons, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wins (B × M) and games (B × M × M) from triplet counts (B × T)."""
    n_models = len(data.models)
    first_onehot = np.zeros((len(data.first), n_models))
    first_onehot[np.arange(len(data.first)), data.first] = 1
    second_onehot = np.zeros((len(data.second), n_models))
    second_onehot[np.arange(len(data.second)), data.second] = 1
    wins = (counts * data.score) @ first_onehot + (counts * (1 - data.score)) @ second_onehot
    games = np.zeros((counts.shape[0], n_models, n_models))
    np.add.at(games, (slice(None), data.first, data.second), counts)
    games += games.transpose(0, 2, 1)
    return wins, games


def _ratings(log_strength: np.ndarray) -> np.ndarray:
    ratings = SCALE * log_strength  # log10 strength × 400: the Elo-like scale
    return ratings - ratings.mean(axis=1, keepdims=True) + ANCHOR


def _components(games: np.ndarray) -> np.ndarray:
    """Connected components of the comparison graph, numbered by size (0 the largest)."""
    n_models = games.shape[0]
    label = np.full(n_models, -1)
    found = 0
    for start in range(n_models):
        if label[start] >= 0:
            continue
        stack = [start]
        label[start] = found
        while stack:
            node = stack.pop()
            for neighbour in np.nonzero(games[node] > 0)[0]:
                if label[neighbour] < 0:
                    label[neighbour] = found
                    stack.append(neighbour)
        found += 1
    sizes = np.bincount(label, minlength=found)
    rank = np.empty(found, dtype=int)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(found)
    return rank[label]


def bradley_terry(comparisons: pd.DataFrame, *, prior: float = 1.0, min_comparisons: int = MIN_COMPARISONS) -> Ratings:
    """Bradley–Terry ratings of the models in `comparisons` (see the module docstring for the scale).

    Fitted by maximum likelihood (Newton's method) with ties as half a win each, as Chatbot Arena
    counts them, plus a weak prior (`prior` virtual drawn games per model against a reference; > 0).
    Models with fewer than `min_comparisons` comparisons are rated but named in the notes; so are
    models that never won or never lost, and the components of a disconnected comparison graph, whose
    ratings cannot be compared across components.
    """
    if prior <= 0:
        raise ValueError("prior must be positive: without it a model that never lost has no finite rating")
    data = _collapse(comparisons)
    notes = list(data.notes)
    columns = ["rating", "n", "wins", "ties", "losses", "component"]
    if len(data.models) == 0:
        notes.append("no comparisons")
        return Ratings(pd.DataFrame(columns=columns), notes)
    wins, games = _tables(data, data.count[None, :])
    ratings = _ratings(_fit(wins, games, prior=prior))[0]
    n = games[0].sum(axis=1)
    ties = np.zeros(len(data.models))
    tied = data.score == 0.5
    np.add.at(ties, data.first[tied], data.count[tied])
    np.add.at(ties, data.second[tied], data.count[tied])
    won = wins[0] - ties / 2
    components = _components(games[0])
    table = pd.DataFrame(
        {
            "rating": ratings,
            "n": n.astype(int),
            "wins": won.round().astype(int),
            "ties": ties.astype(int),
            "losses": (n - won - ties).round().astype(int),
            "component": components,
        },
        index=pd.Index(data.models, name="model"),
    ).sort_values("rating", ascending=False)
    few = table.index[table["n"] < min_comparisons].tolist()
    if few:
        notes.append(f"fewer than {min_comparisons} comparisons, ratings uncertain: {', '.join(map(str, few))}")
    # A tie is half a loss and half a win, so only a record without ties and without losses (or wins) is perfect.
    no_ties = table["ties"] == 0
    perfect = table.index[no_ties & ((table["losses"] == 0) | (table["wins"] == 0))].tolist()
    if perfect:
        notes.append(f"never lost or never won, rating held finite by the prior only: {', '.join(map(str, perfect))}")
    if components.max() > 0:
        groups = [sorted(map(str, table.index[table["component"] == c])) for c in range(components.max() + 1)]
        notes.append(
            "the comparison graph is disconnected; ratings compare only within a component: "
            + "; ".join(f"{i}: {', '.join(g)}" for i, g in enumerate(groups))
        )
    return Ratings(table, notes)


def bradley_terry_bootstrap(
    comparisons: pd.DataFrame,
    *,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    prior: float = 1.0,
    min_comparisons: int = MIN_COMPARISONS,
) -> Ratings:
    """`bradley_terry` with percentile intervals (1 - alpha) from `n` resamples of the comparisons.

    Each resample draws as many comparisons as there are, with replacement, and is refitted and
    re-anchored to a mean of 1000, as Chatbot Arena does; the table gains ci_low and ci_high.
    Resampling the distinct (pair, outcome) counts from a multinomial is the same draw, and lets every
    resample be fitted at once.
    """
    point = bradley_terry(comparisons, prior=prior, min_comparisons=min_comparisons)
    if point.table.empty:
        return point
    data = _collapse(comparisons)
    rng = np.random.default_rng(seed)
    total = data.count.sum()
    draws = rng.multinomial(int(total), data.count / total, size=n).astype(float)
    samples = []
    chunk = max(1, 2_000_000 // max(len(data.models) ** 2, 1))  # resamples per batch: bounds B × M × M
    for start in range(0, n, chunk):
        wins, games = _tables(data, draws[start : start + chunk])
        samples.append(_ratings(_fit(wins, games, prior=prior)))
    ratings = pd.DataFrame(np.concatenate(samples), columns=data.models)
    low, high = ratings.quantile(alpha / 2), ratings.quantile(1 - alpha / 2)
    table = point.table.assign(ci_low=low.reindex(point.table.index), ci_high=high.reindex(point.table.index))
    return Ratings(table, point.notes)


def win_rate_matrix(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Models × models: the share of the row model's comparisons against the column model that it won.

    A tie counts half. NaN where two models were never compared, and on the diagonal.
    """
    data = _collapse(comparisons)
    n_models = len(data.models)
    won = np.zeros((n_models, n_models))
    played = np.zeros((n_models, n_models))
    np.add.at(won, (data.first, data.second), data.count * data.score)
    np.add.at(won, (data.second, data.first), data.count * (1 - data.score))
    np.add.at(played, (data.first, data.second), data.count)
    played += played.T
    rates = np.full((n_models, n_models), np.nan)
    np.divide(won, played, out=rates, where=played > 0)
    return pd.DataFrame(rates, index=pd.Index(data.models, name="model"), columns=data.models)


def hybrid_outcomes(
    *, human_main: pd.DataFrame, verdicts: pd.Series, adjudicated: pd.Series
) -> tuple[pd.Series, pd.Index]:
    """The final direction per item for the hybrid leaderboard, and the items left undecided, as the exports
    decide them (annotate/exports/aggregate.py, source "hybrid").

    human_main: long human labels of the main pairwise aspect (item, value); verdicts: the judges' verdict
    per item (its sign); adjudicated: a reviewer's direction per item.

    A reviewer's adjudication wins; otherwise an item with human labels takes their strict majority (of
    the signs: `majority_by_item` → `annotate.stats.aggregate.strict_majority`, the exports' rule), and one
    without a strict majority is undecided — it does not fall back on the judges, as the hybrid export does
    not; an item without human labels takes the judges' verdict.
    """
    humans = human_main[human_main["value"].notna()]
    majority = majority_by_item(humans, pairwise=True)
    undecided = majority.index[majority.isna()].difference(adjudicated.index)
    final = adjudicated.combine_first(majority.dropna())
    judged = verdicts[~verdicts.index.isin(majority.index)]
    return final.combine_first(judged), undecided
