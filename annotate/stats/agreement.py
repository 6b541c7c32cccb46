"""Inter-rater agreement over an items × raters matrix: Krippendorff's alpha, Fleiss', Cohen's kappa, Gwet's AC1.

Every function takes a rating matrix: one row per item, one column per rater, float values, NaN where
the rater did not label the item (a pandas DataFrame works too; its column labels name the raters).
Figures that need the scale take its full value domain explicitly (`domain=[-2, -1, 0, 1, 2]`), in
scale order: a value nobody used still counts for Gwet's AC1 and the weighted kappas, and a value
outside the domain is a programming error (ValueError).

Data too thin for a figure (one rater, no item with two labels, a single value in the domain, every
label the same) gives None, never an exception; `agreement_report` says why in its notes.

Bootstrap intervals resample items. The count-based statistics (alpha at each level, Fleiss' kappa,
AC1, percent agreement) depend on an item only through its value counts, so resampling N items with
replacement is the same as drawing the number of times each distinct count pattern occurs from a
multinomial: a thousand resamples of 100,000 items cost a few matrix products, not a thousand passes.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import krippendorff
import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    MatrixLike = np.ndarray | pd.DataFrame

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")

# Reasons a figure is undefined; agreement_report groups the figures by reason in its notes.
NO_LABELS = "there are no labels"
NO_PAIRS = "no item has labels from two raters"
ONE_RATER = "only one rater labelled anything"
ONE_VALUE_DOMAIN = "the value domain has a single value, so there is nothing to disagree about"
SAME_VALUE = "every label has the same value: chance agreement is total, so a chance-corrected figure is undefined"


# ---------------------------------------------------------------------------------------------------------
# Inputs


def is_frame(value: object) -> bool:
    """Whether `value` is a pandas DataFrame, without importing pandas (~100 MiB): a process that has not
    loaded pandas holds no DataFrame, and routing's majorities on arrays run in every web process."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def as_matrix(matrix: MatrixLike) -> np.ndarray:
    """The rating matrix as a 2-D float array (NaN = missing); pandas nullable integers become NaN."""
    if is_frame(matrix):
        array = matrix.to_numpy(dtype=float, na_value=np.nan)
    else:
        array = np.asarray(matrix, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"a rating matrix is items × raters (2-D), got {array.ndim}-D")
    return array


def rating_matrix(
    labels: pd.DataFrame, *, item: str = "item", rater: str = "rater", value: str = "value"
) -> pd.DataFrame:
    """Long labels (one row per item and rater) as an items × raters matrix; raises on a duplicate pair."""
    frame = labels[[item, rater, value]].dropna(subset=[value])
    return frame.pivot(index=item, columns=rater, values=value).astype(float)


def _domain_array(domain: Sequence[float]) -> np.ndarray:
    values = np.asarray(domain, dtype=float)
    if values.ndim != 1 or len(np.unique(values)) != len(values):
        raise ValueError(f"the domain must be a list of distinct values, got {domain!r}")
    return values


def _require_increasing(values: np.ndarray, level: str) -> None:
    # The krippendorff package takes the domain's order as the scale's; a shuffled domain would be a
    # silently different ordinal or interval scale.
    if level != "nominal" and np.any(np.diff(values) <= 0):
        raise ValueError(f"a domain for the {level} level must be in increasing order, got {values.tolist()}")


def domain_codes(matrix: MatrixLike, *, domain: Sequence[float]) -> np.ndarray:
    """Each rating's position in `domain` (int64, -1 where missing); raises on a value outside the domain."""
    array = as_matrix(matrix)
    values = _domain_array(domain)
    codes = np.full(array.shape, -1, dtype=np.int64)
    present = ~np.isnan(array)
    rated = array[present]
    if rated.size == 0:
        return codes
    if values.size == 0:
        raise ValueError("the domain is empty but the matrix has ratings")
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    position = np.searchsorted(ordered, rated).clip(max=len(ordered) - 1)
    outside = ordered[position] != rated
    if outside.any():
        raise ValueError(f"values outside the domain {values.tolist()}: {np.unique(rated[outside])[:5].tolist()}")
    codes[present] = order[position]
    return codes


def _codes_from_data(matrix: MatrixLike) -> tuple[np.ndarray, np.ndarray]:
    """Codes against the values that occur, for figures that need no domain."""
    array = as_matrix(matrix)
    used = np.unique(array[~np.isnan(array)])
    return domain_codes(array, domain=used), used


def _counts_from_codes(codes: np.ndarray, n_values: int) -> np.ndarray:
    n_items = codes.shape[0]
    rows = np.broadcast_to(np.arange(n_items)[:, None], codes.shape)
    present = codes >= 0
    flat = rows[present] * n_values + codes[present]
    return np.bincount(flat, minlength=n_items * n_values).reshape(n_items, n_values)


def value_counts(matrix: MatrixLike, *, domain: Sequence[float]) -> np.ndarray:
    """Items × domain array: how many raters gave each item each value."""
    return _counts_from_codes(domain_codes(matrix, domain=domain), len(domain))


def _patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a value-count array and how often each occurs.

    A scale has a handful of values and an item a handful of labels, so 100,000 items collapse to a
    few hundred patterns; every count-based statistic is then a weighted sum over patterns.
    """
    if counts.shape[0] == 0:
        return counts.astype(float), np.zeros(0)
    base = int(counts.max()) + 1
    n_values = counts.shape[1]
    if n_values * np.log2(max(base, 2)) < 62:
        keys = counts.astype(np.int64) @ (base ** np.arange(n_values, dtype=np.int64))
        _, first, freq = np.unique(keys, return_index=True, return_counts=True)
        return counts[first].astype(float), freq.astype(float)
    patterns, freq = np.unique(counts, axis=0, return_counts=True)
    return patterns.astype(float), freq.astype(float)


# ---------------------------------------------------------------------------------------------------------
# Count-based statistics, vectorised over bootstrap resamples
#
# Each takes `patterns` (P × V value counts) and `weights` (B × P: how many items of each pattern a
# resample holds; the data itself is the single row of pattern frequencies) and returns B values,
# NaN where undefined.


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive (every one here is a count or 1 - p)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    ok = denominator > 0
    np.divide(numerator, denominator, out=out, where=ok)
    return out


def _ordinal_distances(n_v: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric per resample: (sum of n_g for g from c to k, minus (n_c + n_k) / 2)²."""
    n_values = n_v.shape[1]
    cumulative = np.cumsum(n_v, axis=1)
    low = np.minimum.outer(np.arange(n_values), np.arange(n_values))
    high = np.maximum.outer(np.arange(n_values), np.arange(n_values))
    between = cumulative[:, high] - cumulative[:, low] + n_v[:, low]
    return (between - (n_v[:, low] + n_v[:, high]) / 2) ** 2


def _alpha_batch(patterns: np.ndarray, weights: np.ndarray, *, level: Level, domain: np.ndarray) -> np.ndarray:
    n_patterns, n_values = patterns.shape
    labels = patterns.sum(axis=1)
    pairable = labels >= 2
    # Each item adds c cᵀ - diag(c), divided by (m - 1), to the coincidence matrix; items with one label add nothing.
    contribution = patterns[:, :, None] * patterns[:, None, :]
    contribution[:, np.arange(n_values), np.arange(n_values)] -= patterns
    contribution /= np.where(pairable, labels - 1, 1)[:, None, None]
    contribution[~pairable] = 0
    observed = (weights @ contribution.reshape(n_patterns, -1)).reshape(-1, n_values, n_values)
    n_v = observed.sum(axis=2)
    n = n_v.sum(axis=1)
    expected = n_v[:, :, None] * n_v[:, None, :]
    expected[:, np.arange(n_values), np.arange(n_values)] -= n_v
    expected /= np.where(n > 1, n - 1, 1)[:, None, None]
    if level == "nominal":
        distance = 1.0 - np.eye(n_values)
    elif level == "interval":
        distance = (domain[:, None] - domain[None, :]) ** 2
    else:
        distance = _ordinal_distances(n_v)
    disagreement_observed = (observed * distance).sum(axis=(1, 2))
    disagreement_expected = (expected * distance).sum(axis=(1, 2))
    return 1.0 - _safe_ratio(disagreement_observed, disagreement_expected)


def _fleiss_batch(patterns: np.ndarray, weights: np.ndarray, n_ratings: int | None) -> np.ndarray:
    labels = patterns.sum(axis=1)
    if n_ratings is None:
        # The most common number of labels among items with two or more, per resample (ties: the larger).
        sizes = np.arange(int(labels.max(initial=0)) + 1)
        by_size = weights @ (labels[:, None] == sizes[None, :]).astype(float)
        by_size[:, :2] = 0
        k = (by_size.shape[1] - 1 - np.argmax(by_size[:, ::-1], axis=1)).astype(float)
    else:
        k = np.full(weights.shape[0], float(n_ratings))
    used = weights * (labels[None, :] == k[:, None])
    n_items = used.sum(axis=1)
    k_safe = np.where(k >= 2, k, 2)
    per_item = (patterns**2).sum(axis=1)[None, :] - k_safe[:, None]
    p_bar = _safe_ratio((used * per_item).sum(axis=1), n_items * k_safe * (k_safe - 1))
    p_j = _safe_ratio(used @ patterns, (n_items * k_safe)[:, None])
    p_e = (p_j**2).sum(axis=1)
    kappa = _safe_ratio(p_bar - p_e, np.where(np.isclose(p_e, 1.0), 0.0, 1.0 - p_e))
    kappa[(k < 2) | (n_items == 0)] = np.nan
    return kappa


def _pa_terms(patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = patterns.sum(axis=1)
    multi = labels >= 2
    agreeing = (patterns * (patterns - 1)).sum(axis=1) / np.where(multi, labels * (labels - 1), 1)
    return np.where(multi, agreeing, 0.0), multi.astype(float)


def _percent_agreement_batch(patterns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    agreeing, multi = _pa_terms(patterns)
    return _safe_ratio(weights @ agreeing, weights @ multi)


def _ac1_batch(patterns: np.ndarray, weights: np.ndarray, n_categories: int) -> np.ndarray:
    # Gwet (2008; Handbook of Inter-Rater Reliability, 4th ed., 2014, ch. 2) with missing ratings: the
    # observed agreement averages over items with two or more labels, the category prevalences π_k over
    # every labelled item (each item's label shares r_ik / r_i), and p_e = Σ π_k (1 - π_k) / (q - 1).
    p_a = _percent_agreement_batch(patterns, weights)
    labels = patterns.sum(axis=1)
    rated = labels >= 1
    shares = patterns / np.where(rated, labels, 1)[:, None]
    pi = _safe_ratio(weights @ shares, (weights @ rated.astype(float))[:, None])
    p_e = (pi * (1 - pi)).sum(axis=1) / (n_categories - 1) if n_categories > 1 else np.full(len(p_a), np.nan)
    return _safe_ratio(p_a - p_e, 1 - p_e)


@dataclass(frozen=True)
class CountStatistic:
    """A statistic of each item's value counts alone, so a bootstrap can resample count patterns.

    Call it on a rating matrix like any statistic; `bootstrap_ci` recognises it and takes the fast path.
    """

    name: str
    domain: tuple[float, ...]
    batch: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def __call__(self, matrix: MatrixLike) -> float | None:
        patterns, freq = _patterns(value_counts(matrix, domain=self.domain))
        return _finite(self.batch(patterns, freq[None, :])[0]) if len(freq) else None


COUNT_STATISTICS = (
    "krippendorff_alpha_nominal",
    "krippendorff_alpha_ordinal",
    "krippendorff_alpha_interval",
    "fleiss_kappa",
    "gwet_ac1",
    "percent_agreement",
)


def count_statistic(name: str, *, domain: Sequence[float], n_ratings: int | None = None) -> CountStatistic:
    """One of COUNT_STATISTICS over `domain`, ready for `bootstrap_ci`; `n_ratings` is Fleiss' k (see fleiss_kappa)."""
    values = _domain_array(domain)
    if name.startswith("krippendorff_alpha_"):
        level = name.removeprefix("krippendorff_alpha_")
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}: one of {LEVELS}")
        _require_increasing(values, level)

        def batch(patterns, weights):
            return _alpha_batch(patterns, weights, level=level, domain=values)  # type: ignore[arg-type]

    elif name == "fleiss_kappa":

        def batch(patterns, weights):
            return _fleiss_batch(patterns, weights, n_ratings)

    elif name == "gwet_ac1":

        def batch(patterns, weights):
            return _ac1_batch(patterns, weights, len(values))

    elif name == "percent_agreement":
        batch = _percent_agreement_batch
    else:
        raise ValueError(f"unknown count statistic {name!r}: one of {COUNT_STATISTICS}")
    return CountStatistic(name=name, domain=tuple(values.tolist()), batch=batch)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------------
# Why a figure is undefined


def _raters_with_labels(codes: np.ndarray) -> int:
    return int((codes >= 0).any(axis=0).sum())


def _thin_data_reason(codes: np.ndarray) -> str | None:
    """The reason no agreement figure exists for these codes, or None when there are pairs to compare."""
    if ((codes >= 0).sum(axis=1) >= 2).any():
        return None
    raters = _raters_with_labels(codes)
    return NO_LABELS if raters == 0 else ONE_RATER if raters == 1 else NO_PAIRS


def _chance_reason(codes: np.ndarray, n_values: int) -> str | None:
    """Why a chance-corrected figure is undefined (on top of thin data), or None."""
    reason = _thin_data_reason(codes)
    if reason:
        return reason
    if n_values < 2:
        return ONE_VALUE_DOMAIN
    paired = codes[(codes >= 0).sum(axis=1) >= 2]
    if len(np.unique(paired[paired >= 0])) == 1:
        return SAME_VALUE
    return None


# ---------------------------------------------------------------------------------------------------------
# The figures


def _alpha(codes: np.ndarray, counts: np.ndarray, *, level: Level, domain: np.ndarray) -> tuple[float | None, str]:
    reason = _chance_reason(codes, len(domain))
    if reason:
        return None, reason
    value = krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level)
    return _finite(value), SAME_VALUE


def krippendorff_alpha(matrix: MatrixLike, *, level: Level, domain: Sequence[float]) -> float | None:
    """Krippendorff's alpha at `level` ("nominal", "ordinal" or "interval"), by the `krippendorff` package.

    Missing ratings are allowed; items with fewer than two labels do not count. The level and the full
    value domain are passed to the package explicitly (for the ordinal and interval levels the domain
    is the scale, in increasing order). None when alpha is undefined.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: one of {LEVELS}")
    values = _domain_array(domain)
    _require_increasing(values, level)
    codes = domain_codes(matrix, domain=values)
    return _alpha(codes, _counts_from_codes(codes, len(values)), level=level, domain=values)[0]


def _modal_ratings(codes: np.ndarray) -> int | None:
    labels = (codes >= 0).sum(axis=1)
    multi = labels[labels >= 2]
    if multi.size == 0:
        return None
    sizes = np.bincount(multi)
    return int(len(sizes) - 1 - np.argmax(sizes[::-1]))  # the most common count; a tie goes to the larger


def _fleiss(codes: np.ndarray, n_values: int, n_ratings: int | None) -> tuple[float | None, str]:
    reason = _chance_reason(codes, n_values)
    if reason:
        return None, reason
    k = n_ratings if n_ratings is not None else _modal_ratings(codes)
    labels = (codes >= 0).sum(axis=1)
    if k is None or k < 2 or not (labels == k).any():
        return None, f"no item has exactly {k} labels"
    subset = codes[labels == k]
    if _chance_reason(subset, n_values):
        return None, f"the items with exactly {k} labels all have the same value"
    patterns, freq = _patterns(_counts_from_codes(subset, n_values))
    return _finite(_fleiss_batch(patterns, freq[None, :], k)[0]), SAME_VALUE


def fleiss_kappa(matrix: MatrixLike, *, domain: Sequence[float], n_ratings: int | None = None) -> float | None:
    """Fleiss' kappa over the items with exactly `n_ratings` labels (which raters gave them does not matter).

    Fleiss' kappa needs the same number of labels per item. By default that number is the most common
    one among items with two or more labels (on a tie, the larger): the campaign's overlap when most
    items got it. Pass the campaign's overlap as `n_ratings` to fix it. Other items are left out.
    """
    values = _domain_array(domain)
    return _fleiss(domain_codes(matrix, domain=values), len(values), n_ratings)[0]


def _pair_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every co-rated (rater a < rater b) pair of labels on an item: raters a, b, their codes, and the item."""
    present = codes >= 0
    items, raters = np.nonzero(present)  # row-major: within an item, raters come in column order
    values = codes[items, raters]
    per_item = present.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(per_item)[:-1]])
    parts: list[tuple[np.ndarray, ...]] = []
    # Pair the p-th and q-th label of every item that has more than q labels: loops over label slots
    # (at most the overlap, squared), never over items.
    for p, q in itertools.combinations(range(int(per_item.max(initial=0))), 2):
        first = starts[per_item > q] + p
        second = starts[per_item > q] + q
        parts.append((raters[first], raters[second], values[first], values[second], items[first]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty, empty
    a, b, va, vb, item = (np.concatenate(column) for column in zip(*parts, strict=True))
    return a, b, va, vb, item


def _kappa_from_tables(tables: np.ndarray, weights: Literal["quadratic"] | None) -> np.ndarray:
    """Cohen's kappa of each V × V confusion table (rows: first rater), NaN where undefined."""
    n_values = tables.shape[-1]
    index = np.arange(n_values)
    if weights is None:
        distance = 1.0 - np.eye(n_values)
    elif weights == "quadratic":
        distance = (index[:, None] - index[None, :]).astype(float) ** 2
    else:
        raise ValueError(f"weights must be None or 'quadratic', got {weights!r}")
    n = tables.sum(axis=(-2, -1))
    expected = tables.sum(axis=-1)[..., :, None] * tables.sum(axis=-2)[..., None, :]
    expected = expected / np.where(n > 0, n, 1)[..., None, None]
    observed_d = (tables * distance).sum(axis=(-2, -1))
    expected_d = (expected * distance).sum(axis=(-2, -1))
    return 1.0 - _safe_ratio(observed_d, np.where(np.isclose(expected_d, 0.0), 0.0, expected_d))


def cohen_kappa(
    first: Sequence[float] | np.ndarray,
    second: Sequence[float] | np.ndarray,
    *,
    domain: Sequence[float] | None = None,
    weights: Literal["quadratic"] | None = None,
) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (NaN in either drops the item).

    Quadratic weights use the distance between positions in `domain` (the values that occur when it
    is None, which is fine unweighted but not for a weighted kappa, whose weights depend on the scale).
    """
    pair = np.column_stack([np.asarray(first, dtype=float), np.asarray(second, dtype=float)])
    pair = pair[~np.isnan(pair).any(axis=1)]
    if domain is None:
        codes, used = _codes_from_data(pair)
        n_values = len(used)
    else:
        codes, n_values = domain_codes(pair, domain=domain), len(domain)
    if len(codes) == 0 or n_values == 0:
        return None
    table = np.bincount(codes[:, 0] * n_values + codes[:, 1], minlength=n_values * n_values)
    return _finite(_kappa_from_tables(table.reshape(n_values, n_values).astype(float), weights))


def _cohen_tables(codes: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Rater pair ids (a * n_raters + b, a < b) and each pair's confusion table over co-rated items."""
    a, b, va, vb, _ = _pair_rows(codes)
    n_raters = codes.shape[1]
    pair_ids, pair_index = np.unique(a * n_raters + b, return_inverse=True)
    tables = np.bincount(
        (pair_index * n_values + va) * n_values + vb, minlength=len(pair_ids) * n_values * n_values
    ).reshape(len(pair_ids), n_values, n_values)
    return pair_ids, tables.astype(float)


def _cohen_mean(
    pair_ids: np.ndarray, tables: np.ndarray, weights: Literal["quadratic"] | None, min_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    n_items = tables.sum(axis=(1, 2))
    kept = n_items >= min_items
    kappas = _kappa_from_tables(tables[kept], weights) if kept.any() else np.zeros(0)
    defined = kappas[np.isfinite(kappas)]
    return pair_ids[kept], n_items[kept], kappas, float(defined.mean()) if defined.size else None


def cohen_kappa_pairs(
    matrix: MatrixLike,
    *,
    domain: Sequence[float],
    weights: Literal["quadratic"] | None = None,
    min_items: int = 2,
) -> dict:
    """Cohen's kappa for every pair of raters on the items both labelled, and the mean over pairs.

    Returns {"pairs": [{"raters": [a, b], "n_items": int, "kappa": float | None}], "mean": float | None}.
    Raters are named by the DataFrame's column labels (column positions for an array). A pair with
    fewer than `min_items` shared items is left out: one shared item cannot tell agreement from chance.
    `kappa` is None where undefined (both raters gave a single, identical value throughout); the mean
    is over the defined ones, None when there is none. Quadratic weights: (i - j)² between positions in
    `domain`, as scikit-learn's cohen_kappa_score(weights="quadratic", labels=domain).
    """
    names: list[Hashable] = list(matrix.columns) if is_frame(matrix) else list(range(as_matrix(matrix).shape[1]))
    values = _domain_array(domain)
    codes = domain_codes(matrix, domain=values)
    pair_ids, n_items, kappas, mean = _cohen_mean(*_cohen_tables(codes, len(values)), weights, min_items)
    pairs = []
    for pair_id, n, kappa in zip(pair_ids, n_items, kappas, strict=True):
        first, second = divmod(int(pair_id), codes.shape[1])
        pairs.append({"raters": [names[first], names[second]], "n_items": int(n), "kappa": _finite(kappa)})
    return {"pairs": pairs, "mean": mean}


def _ac1(codes: np.ndarray, n_values: int) -> tuple[float | None, str]:
    reason = _thin_data_reason(codes)
    if reason:
        return None, reason
    if n_values < 2:
        return None, ONE_VALUE_DOMAIN
    patterns, freq = _patterns(_counts_from_codes(codes, n_values))
    return _finite(_ac1_batch(patterns, freq[None, :], n_values)[0]), NO_PAIRS


def gwet_ac1(matrix: MatrixLike, *, domain: Sequence[float]) -> float | None:
    """Gwet's AC1 for any number of raters with missing ratings (Gwet 2008; Handbook, 2014).

    Chance agreement uses the number of categories q = len(domain), so the domain matters. Unlike the
    kappas, AC1 is defined when every label is the same (it is then 1).
    """
    values = _domain_array(domain)
    return _ac1(domain_codes(matrix, domain=values), len(values))[0]


def percent_agreement(matrix: MatrixLike) -> float | None:
    """Share of agreeing rater pairs per item, averaged over the items with two or more labels.

    An item with labels 1, 1, 2 scores 1/3 (one agreeing pair out of three). This is Gwet's p_a.
    """
    codes, used = _codes_from_data(matrix)
    if _thin_data_reason(codes):
        return None
    patterns, freq = _patterns(_counts_from_codes(codes, len(used)))
    return _finite(_percent_agreement_batch(patterns, freq[None, :])[0])


# ---------------------------------------------------------------------------------------------------------
# Bootstrap


def _percentile_interval(estimates: np.ndarray, alpha: float) -> tuple[float, float] | None:
    estimates = estimates[np.isfinite(estimates)]
    if estimates.size == 0:
        return None
    low, high = np.quantile(estimates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _bootstrap_counts(
    counts: np.ndarray, batch: Callable[[np.ndarray, np.ndarray], np.ndarray], *, n: int, seed: int, alpha: float
) -> tuple[float, float] | None:
    """The bootstrap of a count statistic from the labelled items' value counts."""
    counts = counts[counts.sum(axis=1) > 0]
    if len(counts) == 0:
        return None
    patterns, freq = _patterns(counts)
    rng = np.random.default_rng(seed)
    # How many copies of each pattern a resample of len(counts) items holds: a multinomial draw.
    draws = rng.multinomial(len(counts), freq / freq.sum(), size=n).astype(float)
    chunk = 256  # resamples per batch: bounds the B × V × V temporaries
    estimates = np.concatenate([batch(patterns, draws[start : start + chunk]) for start in range(0, n, chunk)])
    return _percentile_interval(estimates, alpha)


def bootstrap_ci(
    matrix: MatrixLike,
    statistic: CountStatistic | Callable[[np.ndarray], float | None],
    *,
    n: int,
    seed: int,
    alpha: float = 0.05,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval (1 - alpha) of `statistic`, resampling the labelled items with replacement.

    A CountStatistic (see count_statistic) is resampled through its count patterns, all resamples at
    once. Any other callable takes a rating matrix (rows: the resampled items) and is called once per
    resample. Items without any label are not resampled. Resamples where the statistic is undefined
    are dropped; None when none is defined.
    """
    if n < 1:
        raise ValueError("the number of resamples must be at least 1")
    if isinstance(statistic, CountStatistic):
        counts = value_counts(matrix, domain=statistic.domain)
        return _bootstrap_counts(counts, statistic.batch, n=n, seed=seed, alpha=alpha)
    array = as_matrix(matrix)
    rated = array[~np.isnan(array).all(axis=1)]
    if len(rated) == 0:
        return None
    rng = np.random.default_rng(seed)
    estimates = np.full(n, np.nan)
    for i in range(n):
        value = statistic(rated[rng.integers(0, len(rated), len(rated))])
        if value is not None:
            estimates[i] = value
    return _percentile_interval(estimates, alpha)


def _weighted_totals(index: np.ndarray, size: int, weights: np.ndarray) -> np.ndarray:
    """Per resample (rows of `weights`, batch × entries), the weighted count of each of `size` bins (`index`)."""
    batch = len(weights)
    flat = (np.arange(batch)[:, None] * size + index[None, :]).ravel()
    return np.bincount(flat, weights=weights.ravel(), minlength=batch * size).reshape(batch, size)


def _cohen_mean_bootstrap(
    codes: np.ndarray, n_values: int, *, n: int, seed: int, alpha: float, min_items: int = 2
) -> tuple[float, float] | None:
    """The bootstrap of the mean unweighted Cohen's kappa over rater pairs, resampling the labelled items.

    The count statistics' shortcut, with the raters kept: an item matters only through its row of labels
    (who gave which value), so resampling N items is drawing how often each distinct row occurs from a
    multinomial — the same draw, from the same seed, as the count statistics' — and each resample weights the
    co-rated label pairs of every distinct row by its draw. Per pair that gives the agreeing labels and both
    raters' value margins, all an unweighted kappa needs. The mean is over the pairs the estimate averages
    (those sharing at least `min_items` items).
    """
    labelled = codes[(codes >= 0).any(axis=1)]
    if len(labelled) == 0:
        return None
    rows, freq = np.unique(labelled, axis=0, return_counts=True)
    a, b, va, vb, row = _pair_rows(rows)
    if len(a) == 0:
        return None
    _, pair_index = np.unique(a * codes.shape[1] + b, return_inverse=True)
    shared = np.bincount(pair_index, weights=freq[row])
    kept = shared[pair_index] >= min_items
    if not kept.any():
        return None
    _, pair_index = np.unique(pair_index[kept], return_inverse=True)
    va, vb, row, agree = va[kept], vb[kept], row[kept], (va[kept] == vb[kept]).astype(float)
    n_pairs = int(pair_index.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(labelled), freq / freq.sum(), size=n).astype(float)
    # Resamples per batch: bounds the batch × label-pairs weights and the batch × pairs × values margins.
    chunk = max(1, min(256, 4_000_000 // max(len(row), n_pairs * n_values)))
    estimates = []
    for start in range(0, n, chunk):
        weights = draws[start : start + chunk][:, row]  # batch × co-rated label pairs
        count = _weighted_totals(pair_index, n_pairs, weights)
        agreeing = _weighted_totals(pair_index, n_pairs, weights * agree[None, :])
        shape = (len(weights), n_pairs, n_values)
        first = _weighted_totals(pair_index * n_values + va, n_pairs * n_values, weights).reshape(shape)
        second = _weighted_totals(pair_index * n_values + vb, n_pairs * n_values, weights).reshape(shape)
        # Unweighted kappa as `_kappa_from_tables` computes it: 1 - observed / expected disagreement.
        expected_d = count - (first * second).sum(axis=2) / np.where(count > 0, count, 1)
        kappas = 1.0 - _safe_ratio(count - agreeing, np.where(np.isclose(expected_d, 0.0), 0.0, expected_d))
        kappas[count < min_items] = np.nan
        defined = np.isfinite(kappas)
        sums = np.where(defined, kappas, 0.0).sum(axis=1)
        estimates.append(_safe_ratio(sums, defined.sum(axis=1).astype(float)))
    return _percentile_interval(np.concatenate(estimates), alpha)


# ---------------------------------------------------------------------------------------------------------
# The report


def _intervals(
    codes: np.ndarray,
    counts: np.ndarray,
    values: np.ndarray,
    *,
    ordinal: bool,
    point: dict,
    fleiss_k: int | None,
    n: int,
    seed: int,
    notes: list[str],
) -> dict[str, list[float] | None]:
    """95% bootstrap intervals of alpha (ordinal, or nominal), Fleiss' kappa, the mean Cohen's kappa and AC1.

    One method for all: the percentile interval over `n` resamples of the labelled items, from the same
    seed. Alpha, Fleiss' kappa and AC1 share their resamples (drawn as count patterns); Cohen's kappa needs
    the raters' identities, so it draws distinct rows of labels instead (see `_cohen_mean_bootstrap`). A
    figure without a point estimate has no interval; each interval is of the same figure as its estimate
    (Fleiss' kappa over items with the estimate's number of labels, Cohen's mean over its rater pairs).
    """
    level = "ordinal" if ordinal else "nominal"
    alpha_key = f"krippendorff_alpha_{level}"
    batches: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
        alpha_key: count_statistic(alpha_key, domain=values).batch if point["krippendorff_alpha"][level] is not None
        else None,
        "fleiss_kappa": (lambda p, w: _fleiss_batch(p, w, fleiss_k)) if point["fleiss_kappa"] is not None else None,
        "gwet_ac1": (lambda p, w: _ac1_batch(p, w, len(values))) if point["gwet_ac1"] is not None else None,
    }  # fmt: skip
    out: dict[str, list[float] | None] = {}
    for key, batch in batches.items():
        interval = _bootstrap_counts(counts, batch, n=n, seed=seed, alpha=0.05) if batch is not None else None
        out[key] = list(interval) if interval else None
        if interval is None and batch is not None:
            notes.append(f"ci95.{key}: undefined in every resample")
    interval = None
    if point["cohen_kappa_mean"] is not None:
        interval = _cohen_mean_bootstrap(codes, len(values), n=n, seed=seed, alpha=0.05)
        if interval is None:
            notes.append("ci95.cohen_kappa_mean: undefined in every resample")
    out["cohen_kappa_mean"] = list(interval) if interval else None
    return out


def agreement_report(
    matrix: MatrixLike, *, domain: Sequence[float], ordinal: bool, bootstrap: int = 0, seed: int = 0
) -> dict:
    """Every agreement figure for one criterion, in the shape the stats snapshot stores.

    {"n_items_multi": int,
     "krippendorff_alpha": {"nominal": f|None, "ordinal": f|None, "interval": f|None},
     "fleiss_kappa": f|None, "cohen_kappa_mean": f|None, "cohen_kappa_quadratic_mean": f|None,
     "gwet_ac1": f|None, "percent_agreement": f|None,
     "ci95": {"krippendorff_alpha_ordinal": [lo, hi] | None, "fleiss_kappa": ..., "cohen_kappa_mean": ...,
              "gwet_ac1": ...},                                  # only when bootstrap > 0
     "notes": [str]}

    `ordinal` says whether the domain is a scale (pairwise strengths, rubric scores): without it the
    ordinal and interval alphas and the quadratic kappa are None, and the interval is on nominal alpha
    (key "krippendorff_alpha_nominal"). `bootstrap` resamples give the 95% intervals (see `_intervals`).
    Undefined figures are None, and `notes` says why, one line per reason.
    """
    values = _domain_array(domain)
    if ordinal:
        _require_increasing(values, "ordinal")
    codes = domain_codes(matrix, domain=values)
    counts = _counts_from_codes(codes, len(values))
    n_items_multi = int(((codes >= 0).sum(axis=1) >= 2).sum())
    undefined: dict[str, list[str]] = {}
    notes: list[str] = []
    kept: list[str] = []

    def keep(name: str, result: tuple[float | None, str]) -> float | None:
        value, reason = result
        kept.append(name)
        if value is None:
            undefined.setdefault(reason, []).append(name)
        return value

    levels: tuple[Level, ...] = LEVELS if ordinal else ("nominal",)
    alphas: dict[str, float | None] = {level: None for level in LEVELS}
    for level in levels:
        alphas[level] = keep(f"krippendorff_alpha.{level}", _alpha(codes, counts, level=level, domain=values))
    if not ordinal:
        notes.append("krippendorff_alpha.ordinal, .interval, cohen_kappa_quadratic_mean: not a scale (ordinal=False)")

    fleiss = keep("fleiss_kappa", _fleiss(codes, len(values), None))
    k = _modal_ratings(codes)
    if fleiss is not None and k is not None:
        labels = (codes >= 0).sum(axis=1)
        left_out = int(((labels >= 2) & (labels != k)).sum())
        if left_out:
            notes.append(
                f"fleiss_kappa: over the {int((labels == k).sum())} items with exactly {k} labels; "
                f"{left_out} items with another number of labels are left out"
            )

    chance = _chance_reason(codes, len(values))
    tables = _cohen_tables(codes, len(values))
    kappas: dict[str, float | None] = {}
    for key, weights in (("cohen_kappa_mean", None), ("cohen_kappa_quadratic_mean", "quadratic")):
        if key == "cohen_kappa_quadratic_mean" and not ordinal:
            kappas[key] = None
            continue
        mean = None if chance else _cohen_mean(*tables, weights, 2)[3]
        kappas[key] = keep(key, (mean, chance or "no pair of raters shares two items with a defined kappa"))

    ac1 = keep("gwet_ac1", _ac1(codes, len(values)))
    pct = None
    if not _thin_data_reason(codes):
        patterns, freq = _patterns(counts)
        pct = _finite(_percent_agreement_batch(patterns, freq[None, :])[0])
    keep("percent_agreement", (pct, _thin_data_reason(codes) or NO_PAIRS))

    report: dict = {
        "n_items_multi": n_items_multi,
        "krippendorff_alpha": alphas,
        "fleiss_kappa": fleiss,
        "cohen_kappa_mean": kappas["cohen_kappa_mean"],
        "cohen_kappa_quadratic_mean": kappas["cohen_kappa_quadratic_mean"],
        "gwet_ac1": ac1,
        "percent_agreement": pct,
    }
    if bootstrap > 0:
        report["ci95"] = _intervals(
            codes, counts, values, ordinal=ordinal, point=report, fleiss_k=k, n=bootstrap, seed=seed, notes=notes
        )
    if len(undefined) == 1 and len(next(iter(undefined.values()))) == len(kept):
        # One reason for every figure (no labels yet, one rater): say it once, not after eight names.
        report["notes"] = [f"no figure yet: {next(iter(undefined))}"] + notes
    else:
        report["notes"] = [f"{', '.join(names)}: {reason}" for reason, names in undefined.items()] + notes
    return report
