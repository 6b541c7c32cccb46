"""Label aggregation: majority vote with an explicit tie rule, mean scores, vote distributions, Dawid–Skene.

Matrix inputs are items × raters (NaN = missing), as in `agreement`; a DataFrame in gives pandas out,
indexed by its items. Dawid–Skene takes long labels (item, rater, value).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from annotate.stats.agreement import (
    _codes_from_data,
    _counts_from_codes,
    as_matrix,
    domain_codes,
    is_frame,
    value_counts,
)

if TYPE_CHECKING:
    import pandas as pd

    from annotate.stats.agreement import MatrixLike

# pandas is imported by the functions that take or build frames: routing's majorities on arrays run in every
# web process, which need not carry pandas (~100 MiB) for them (tests/test_startup_imports.py).

TieRule = Literal["tie", "none", "mean"]
POOLED_RATER = "(pooled)"


def _like_rows(matrix: MatrixLike, values: np.ndarray, name: str) -> np.ndarray | pd.Series:
    if is_frame(matrix):
        import pandas as pd

        return pd.Series(values, index=matrix.index, name=name)
    return values


def majority_vote(matrix: MatrixLike, *, tie_rule: TieRule = "none") -> np.ndarray | pd.Series:
    """The most frequent value per item; NaN for an item without labels.

    When two or more values share the top count, `tie_rule` decides:
      "none": NaN, no majority (the item needs another label);
      "tie":  0, the pairwise scale's tie ("A and B split the raters"), for pairwise aspects only;
      "mean": the mean of the tied values (pairwise -1 and 1 give 0; rubric 3 and 4 give 3.5).
    """
    if tie_rule not in ("tie", "none", "mean"):
        raise ValueError(f"tie_rule must be 'tie', 'none' or 'mean', got {tie_rule!r}")
    codes, used = _codes_from_data(matrix)
    return _like_rows(matrix, _majority(_counts_from_codes(codes, len(used)), used, tie_rule), "majority")


def majority_vote_long(labels: pd.DataFrame, *, tie_rule: TieRule = "none") -> pd.Series:
    """`majority_vote` of long labels (columns item, value), indexed by item; raters need not be named."""
    import pandas as pd

    if tie_rule not in ("tie", "none", "mean"):
        raise ValueError(f"tie_rule must be 'tie', 'none' or 'mean', got {tie_rule!r}")
    frame = labels[labels["value"].notna()]
    item_codes, items = pd.factorize(frame["item"])
    value_codes, used = pd.factorize(frame["value"].astype(float))
    counts = np.bincount(item_codes * len(used) + value_codes, minlength=len(items) * len(used))
    result = _majority(counts.reshape(len(items), len(used)), np.asarray(used, dtype=float), tie_rule)
    return pd.Series(result, index=items, name="majority")


def strict_majority(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The one rule for "strict majority": per row of `counts` (items × values), the value counted strictly
    more often than every other; NaN when two or more share the top count, or when the row has no count.

    Every final label Tandem derives by majority goes through it — the exports' pairwise winner, the hybrid
    leaderboard, the human majority judges are measured against — so "no strict majority" means one thing:
    the item is undecided.
    """
    result = np.full(counts.shape[0], np.nan)
    if len(values):
        top = counts.max(axis=1)
        single = ((counts == top[:, None]) & (top[:, None] > 0)).sum(axis=1) == 1
        result[single] = np.asarray(values, dtype=float)[counts[single].argmax(axis=1)]
    return result


def _majority(counts: np.ndarray, used: np.ndarray, tie_rule: TieRule) -> np.ndarray:
    result = strict_majority(counts, used)
    if len(used) and tie_rule != "none":
        top = counts.max(axis=1)
        at_top = (counts == top[:, None]) & (top[:, None] > 0)
        n_top = at_top.sum(axis=1)
        tied = n_top > 1
        if tie_rule == "tie":
            result[tied] = 0.0
        elif tie_rule == "mean":
            result[tied] = (at_top[tied] @ used) / n_top[tied]
    return result


def mean_score(matrix: MatrixLike) -> np.ndarray | pd.Series:
    """The mean label per item (rubric scores); NaN for an item without labels."""
    array = as_matrix(matrix)
    n = (~np.isnan(array)).sum(axis=1)
    total = np.nansum(array, axis=1)
    result = np.full(len(array), np.nan)
    np.divide(total, n, out=result, where=n > 0)
    return _like_rows(matrix, result, "mean")


def soft_labels(matrix: MatrixLike, *, domain: Sequence[float]) -> np.ndarray | pd.DataFrame:
    """The vote distribution per item: items × domain shares summing to 1 (NaN rows for unlabelled items)."""
    counts = value_counts(matrix, domain=domain).astype(float)
    total = counts.sum(axis=1, keepdims=True)
    shares = np.full(counts.shape, np.nan)
    np.divide(counts, total, out=shares, where=total > 0)
    if is_frame(matrix):
        import pandas as pd

        return pd.DataFrame(shares, index=matrix.index, columns=list(domain))
    return shares


@dataclass
class DawidSkene:
    """The result of `dawid_skene`.

    posterior: items × domain, P(true value | labels), rows sum to 1.
    labels: the most probable value per item; NaN where the top probabilities tie.
    confusion: rater (or POOLED_RATER) -> domain × domain, rows the true value, columns the value the
      rater gives, rows summing to 1 (empty when the method fell back to majority).
    priors: the estimated share of each true value.
    method: "dawid_skene", or "majority" when there were too few usable raters (posterior = vote shares).
    """

    posterior: pd.DataFrame
    labels: pd.Series
    confusion: dict[Hashable, pd.DataFrame]
    priors: pd.Series
    method: Literal["dawid_skene", "majority"]
    n_iter: int = 0
    converged: bool = True
    notes: list[str] = field(default_factory=list)


def _argmax_or_nan(posterior: np.ndarray, domain: np.ndarray) -> np.ndarray:
    top = posterior.max(axis=1, keepdims=True)
    at_top = np.isclose(posterior, top, rtol=0, atol=1e-12)
    labels = domain[posterior.argmax(axis=1)].astype(float)
    labels[at_top.sum(axis=1) != 1] = np.nan
    return labels


def dawid_skene(
    labels: pd.DataFrame,
    *,
    domain: Sequence[float],
    max_iter: int = 100,
    tol: float = 1e-6,
    min_labels_per_rater: int = 5,
    smoothing: float = 0.01,
) -> DawidSkene:
    """Dawid & Skene (1979): each rater's confusion matrix and each item's true value, by EM.

    `labels` columns: item, rater, value (rows with a missing value are ignored). The posterior starts
    from the vote shares (majority-vote initialisation); each M-step re-estimates the priors and the
    confusion matrices, each E-step the posteriors; it stops when no posterior moves by more than `tol`
    or after `max_iter` rounds. `smoothing` is a pseudo-count added to every confusion cell, so a value
    a rater never gave does not get probability zero and veto an item.

    A rater with fewer than `min_labels_per_rater` labels cannot support a confusion matrix of their
    own: such raters share one, under POOLED_RATER. With fewer than two raters who have enough labels
    the model is not identified, and the result falls back to the vote shares (method "majority"),
    saying so in `notes`.
    """
    import pandas as pd

    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    frame = labels[labels["value"].notna()]
    values = np.asarray(domain, dtype=float)
    n_values = len(values)
    item_codes, items = pd.factorize(frame["item"])
    value_codes = domain_codes(frame["value"].to_numpy(dtype=float)[:, None], domain=values)[:, 0]
    n_items = len(items)
    votes = np.bincount(item_codes * n_values + value_codes, minlength=n_items * n_values).reshape(n_items, -1)
    posterior = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)
    notes: list[str] = []

    per_rater = frame["rater"].value_counts()
    usable = per_rater[per_rater >= min_labels_per_rater].index
    pooled = frame["rater"].where(frame["rater"].isin(usable), POOLED_RATER)
    if len(usable) < len(per_rater):
        few = len(per_rater) - len(usable)
        notes.append(f"{few} rater(s) with fewer than {min_labels_per_rater} labels share one confusion matrix")

    def result(method, confusion, priors, n_iter=0, converged=True) -> DawidSkene:
        return DawidSkene(
            posterior=pd.DataFrame(posterior, index=items, columns=values.tolist()),
            labels=pd.Series(_argmax_or_nan(posterior, values), index=items, name="label"),
            confusion=confusion,
            priors=pd.Series(priors, index=values.tolist(), name="prior"),
            method=method,
            n_iter=n_iter,
            converged=converged,
            notes=notes,
        )

    if len(usable) < 2 or n_items == 0:
        notes.append(
            f"only {len(usable)} rater(s) with at least {min_labels_per_rater} labels: "
            "Dawid–Skene needs two, so these are the majority-vote shares"
        )
        priors = posterior.sum(axis=0) / max(n_items, 1)
        return result("majority", {}, priors)

    rater_codes, raters = pd.factorize(pooled)
    n_raters = len(raters)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        # M-step: priors and confusion matrices from the current posteriors.
        priors = (posterior.sum(axis=0) + smoothing) / (n_items + n_values * smoothing)
        confusion = np.empty((n_raters, n_values, n_values))
        for true in range(n_values):
            confusion[:, true, :] = np.bincount(
                rater_codes * n_values + value_codes, weights=posterior[item_codes, true], minlength=n_raters * n_values
            ).reshape(n_raters, n_values)
        confusion += smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: log P(true value) + Σ over the item's labels of log P(label | true value, rater).
        log_confusion = np.log(confusion)
        log_post = np.tile(np.log(priors), (n_items, 1))
        for true in range(n_values):
            log_post[:, true] += np.bincount(
                item_codes, weights=log_confusion[rater_codes, true, value_codes], minlength=n_items
            )
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = np.abs(updated - posterior).max()
        posterior = updated
        if change < tol:
            converged = True
            break
    if not converged:
        notes.append(f"EM stopped after {max_iter} rounds without converging (tol {tol})")
    confusions = {
        rater: pd.DataFrame(confusion[r], index=values.tolist(), columns=values.tolist())
        for r, rater in enumerate(raters)
    }
    return result("dawid_skene", confusions, priors, n_iter, converged)
