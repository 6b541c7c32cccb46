"""Agreement statistics against reference implementations (krippendorff, statsmodels, scikit-learn) and their laws."""

import itertools
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from annotate.stats.agreement import (
    COUNT_STATISTICS,
    LEVELS,
    _pair_rows,
    _patterns,
    agreement_report,
    bootstrap_ci,
    cohen_kappa,
    cohen_kappa_pairs,
    count_statistic,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
    rating_matrix,
    value_counts,
)

NAN = np.nan
PAIRWISE_2 = [-2, -1, 0, 1, 2]
RUBRIC = [0, 1, 2, 3, 4]
INTERVALS = ("fleiss_kappa", "cohen_kappa_mean", "gwet_ac1")  # beside alpha's, in every report's ci95

# Gwet, Handbook of Inter-Rater Reliability, 4th ed. (2014), p. 120: 4 raters, 12 subjects, categories 1-5,
# no rater scoring every subject. It is also Krippendorff's own worked example ("Computing Krippendorff's
# alpha-reliability", 2011), the one in the krippendorff package's docstring.
GWET_HANDBOOK = np.array(
    [
        [1, 1, NAN, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [NAN, 5, 5, 5],
        [NAN, NAN, 1, 1],
        [NAN, NAN, 3, NAN],
    ]
)


def noisy_matrix(seed: int, n_items: int = 300, n_raters: int = 5, domain=RUBRIC, missing: float = 0.25) -> np.ndarray:
    """Raters who see a true value through ±1 noise, with missing labels: agreement well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    low, high = min(domain), max(domain)
    truth = rng.integers(low, high + 1, n_items)
    matrix = np.clip(truth[:, None] + rng.integers(-1, 2, (n_items, n_raters)), low, high).astype(float)
    matrix[rng.random(matrix.shape) < missing] = NAN
    return matrix


# ---------------------------------------------------------------------------------------------------------
# Against the references


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_the_krippendorff_package(seed, level):
    # The domain is wider than the data (±3 while labels stay within ±2): it must be passed through.
    matrix = noisy_matrix(seed, domain=PAIRWISE_2)
    domain = [-3, -2, -1, 0, 1, 2, 3]
    expected = krippendorff.alpha(reliability_data=matrix.T, value_domain=domain, level_of_measurement=level)
    assert krippendorff_alpha(matrix, level=level, domain=domain) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", [n for n in COUNT_STATISTICS if n.startswith("krippendorff")])
def test_vectorised_alpha_matches_the_package(seed, name):
    """The bootstrap's own alpha (from count patterns) is the package's alpha."""
    matrix = noisy_matrix(seed, missing=0.4)
    level = name.removeprefix("krippendorff_alpha_")
    expected = krippendorff.alpha(reliability_data=matrix.T, value_domain=RUBRIC, level_of_measurement=level)
    assert count_statistic(name, domain=RUBRIC)(matrix) == pytest.approx(expected, abs=1e-12)


def test_alpha_on_krippendorffs_example():
    assert krippendorff_alpha(GWET_HANDBOOK, level="nominal", domain=[1, 2, 3, 4, 5]) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(GWET_HANDBOOK, level="ordinal", domain=[1, 2, 3, 4, 5]) == pytest.approx(0.815, abs=5e-4)


def _statsmodels_fleiss(matrix: np.ndarray, k: int) -> float:
    rows = matrix[(~np.isnan(matrix)).sum(axis=1) == k]
    compact = np.array([row[~np.isnan(row)] for row in rows])  # items × k, whoever gave the labels
    table, _ = aggregate_raters(compact)
    return sm_fleiss_kappa(table, method="fleiss")


@pytest.mark.parametrize("seed", range(6))
def test_fleiss_matches_statsmodels_on_complete_data(seed):
    matrix = noisy_matrix(seed, missing=0.0)
    assert fleiss_kappa(matrix, domain=RUBRIC) == pytest.approx(_statsmodels_fleiss(matrix, 5), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_fleiss_with_missing_labels_uses_the_modal_count(seed):
    matrix = noisy_matrix(seed, missing=0.3)
    labels = (~np.isnan(matrix)).sum(axis=1)
    sizes = np.bincount(labels[labels >= 2])
    modal = max(k for k in range(len(sizes)) if sizes[k] == sizes.max())
    assert fleiss_kappa(matrix, domain=RUBRIC) == pytest.approx(_statsmodels_fleiss(matrix, modal), abs=1e-12)
    for k in (2, 3, 4):
        expected = _statsmodels_fleiss(matrix, k)
        assert fleiss_kappa(matrix, domain=RUBRIC, n_ratings=k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weights", [None, "quadratic"])
def test_cohen_pairs_match_scikit_learn(seed, weights):
    matrix = noisy_matrix(seed, missing=0.3)
    result = cohen_kappa_pairs(matrix, domain=RUBRIC, weights=weights)
    assert len(result["pairs"]) == 10
    expected = []
    for pair in result["pairs"]:
        a, b = pair["raters"]
        both = ~np.isnan(matrix[:, a]) & ~np.isnan(matrix[:, b])
        reference = cohen_kappa_score(matrix[both, a], matrix[both, b], labels=RUBRIC, weights=weights)
        assert pair["n_items"] == both.sum()
        assert pair["kappa"] == pytest.approx(reference, abs=1e-12)
        expected.append(reference)
    assert result["mean"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_cohen_pairs_are_named_by_dataframe_columns_and_skip_thin_pairs():
    frame = pd.DataFrame(
        {"ann": [1, 2, 3, 1, NAN], "bob": [1, 2, 2, 1, 3], "cy": [NAN, NAN, NAN, NAN, 3]}, index=list("vwxyz")
    )
    result = cohen_kappa_pairs(frame, domain=[1, 2, 3])
    assert [p["raters"] for p in result["pairs"]] == [["ann", "bob"]]  # bob and cy share a single item


def test_cohen_kappa_of_two_raters_matches_scikit_learn():
    rng = np.random.default_rng(7)
    first = rng.integers(0, 5, 200).astype(float)
    second = np.clip(first + rng.integers(-1, 2, 200), 0, 4)
    first[:10] = NAN  # dropped with their partners
    keep = ~np.isnan(first)
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first[keep], second[keep]), abs=1e-12)
    assert cohen_kappa(first, second, domain=RUBRIC, weights="quadratic") == pytest.approx(
        cohen_kappa_score(first[keep], second[keep], labels=RUBRIC, weights="quadratic"), abs=1e-12
    )


def test_gwet_ac1_on_the_handbook_example():
    # Gwet (2014), p. 120 data; the published figures (irrCAC's gwet.ac1.raw on cac.raw4raters):
    # p_a = 0.8182, p_e = 0.1903, AC1 = 0.7754. By hand: p_a averages, over the 11 subjects with two or
    # more ratings, the share of agreeing rater pairs: (8 × 1 + 2 × 0.5 + 0) / 11 = 9/11. π_k averages each
    # subject's rating shares over all 12 subjects: π = (3, 3.25, 3.5, 1.25, 1) / 12, so
    # p_e = Σ π_k (1 - π_k) / (5 - 1) = 0.190321 and AC1 = (9/11 - p_e) / (1 - p_e) = 0.775444.
    p_a = 9 / 11
    pi = np.array([3, 3.25, 3.5, 1.25, 1]) / 12
    p_e = (pi * (1 - pi)).sum() / 4
    assert p_e == pytest.approx(0.1903, abs=5e-5)
    assert gwet_ac1(GWET_HANDBOOK, domain=[1, 2, 3, 4, 5]) == pytest.approx((p_a - p_e) / (1 - p_e), abs=1e-12)
    assert gwet_ac1(GWET_HANDBOOK, domain=[1, 2, 3, 4, 5]) == pytest.approx(0.7754, abs=5e-5)
    assert percent_agreement(GWET_HANDBOOK) == pytest.approx(p_a, abs=1e-12)


def test_gwet_ac1_counts_unused_categories():
    # q is the domain's size, not the number of values seen: a wider scale makes chance agreement smaller.
    narrow = gwet_ac1(GWET_HANDBOOK, domain=[1, 2, 3, 4, 5])
    wide = gwet_ac1(GWET_HANDBOOK, domain=[0, 1, 2, 3, 4, 5, 6])
    assert wide > narrow


def test_percent_agreement_by_hand():
    matrix = np.array([[1, 1, 2], [3, 3, 3], [1, NAN, NAN], [2, 1, NAN]])
    assert percent_agreement(matrix) == pytest.approx((1 / 3 + 1 + 0) / 3)


# ---------------------------------------------------------------------------------------------------------
# Laws


@st.composite
def identical_raters(draw):
    n_items = draw(st.integers(2, 30))
    n_raters = draw(st.integers(2, 6))
    column = draw(st.lists(st.sampled_from(PAIRWISE_2), min_size=n_items, max_size=n_items))
    if len(set(column)) < 2:
        column[0], column[1] = -2, 2  # two values at least, or chance-corrected figures are undefined
    matrix = np.tile(np.array(column, dtype=float)[:, None], (1, n_raters))
    # Missing labels are fine as long as each item keeps two.
    drop = draw(st.lists(st.tuples(st.integers(0, n_items - 1), st.integers(0, n_raters - 1)), max_size=n_items))
    for item, rater in drop:
        if (~np.isnan(matrix[item])).sum() > 2:
            matrix[item, rater] = NAN
    return matrix


@settings(max_examples=60, deadline=None)
@given(identical_raters())
def test_identical_raters_agree_perfectly(matrix):
    for level in LEVELS:
        assert krippendorff_alpha(matrix, level=level, domain=PAIRWISE_2) == pytest.approx(1.0)
    assert fleiss_kappa(matrix, domain=PAIRWISE_2) in (None, pytest.approx(1.0))  # None: modal rows one-valued
    assert cohen_kappa_pairs(matrix, domain=PAIRWISE_2)["mean"] in (None, pytest.approx(1.0))
    assert gwet_ac1(matrix, domain=PAIRWISE_2) == pytest.approx(1.0)
    assert percent_agreement(matrix) == pytest.approx(1.0)
    report = agreement_report(matrix, domain=PAIRWISE_2, ordinal=True)
    assert report["krippendorff_alpha"]["ordinal"] == pytest.approx(1.0)


def test_identical_raters_on_complete_data_give_one_everywhere():
    column = np.array([1, 2, 3, 4, 0, 2, 2], dtype=float)
    report = agreement_report(np.tile(column[:, None], (1, 3)), domain=RUBRIC, ordinal=True)
    for key in ("fleiss_kappa", "cohen_kappa_mean", "cohen_kappa_quadratic_mean", "gwet_ac1", "percent_agreement"):
        assert report[key] == pytest.approx(1.0), key
    assert report["krippendorff_alpha"] == {level: pytest.approx(1.0) for level in LEVELS}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.permutations(PAIRWISE_2))
def test_relabelling_categories_changes_nothing_nominal(seed, permutation):
    matrix = noisy_matrix(seed, n_items=60, n_raters=4, domain=PAIRWISE_2, missing=0.3)
    mapping = dict(zip(PAIRWISE_2, permutation, strict=True))
    relabelled = np.vectorize(lambda v: v if np.isnan(v) else mapping[int(v)], otypes=[float])(matrix)

    def nominal(m):
        return (
            krippendorff_alpha(m, level="nominal", domain=PAIRWISE_2),
            fleiss_kappa(m, domain=PAIRWISE_2),
            cohen_kappa_pairs(m, domain=PAIRWISE_2)["mean"],
            gwet_ac1(m, domain=PAIRWISE_2),
            percent_agreement(m),
        )

    for before, after in zip(nominal(matrix), nominal(relabelled), strict=True):
        assert after == pytest.approx(before, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Edge cases: None and a note, never an exception


def _assert_all_undefined(report: dict, *, except_: tuple[str, ...] = ()) -> None:
    figures = {
        "fleiss_kappa": report["fleiss_kappa"],
        "cohen_kappa_mean": report["cohen_kappa_mean"],
        "cohen_kappa_quadratic_mean": report["cohen_kappa_quadratic_mean"],
        "gwet_ac1": report["gwet_ac1"],
        "percent_agreement": report["percent_agreement"],
        **{f"alpha_{k}": v for k, v in report["krippendorff_alpha"].items()},
    }
    for name, value in figures.items():
        if name not in except_:
            assert value is None, name
    assert report["notes"]


@pytest.mark.parametrize(
    "matrix, reason",
    [
        (np.array([[1.0], [2.0], [0.0]]), "only one rater"),
        (np.array([[1.0, NAN], [NAN, 2.0], [0.0, NAN]]), "no item has labels from two raters"),
        (np.full((3, 2), NAN), "no labels"),
        (np.zeros((0, 3)), "no labels"),
    ],
)
def test_thin_data(matrix, reason):
    report = agreement_report(matrix, domain=RUBRIC, ordinal=True, bootstrap=50)
    _assert_all_undefined(report)
    assert report["n_items_multi"] == 0
    assert report["ci95"] == dict.fromkeys(("krippendorff_alpha_ordinal", *INTERVALS))
    assert any(reason in note for note in report["notes"])
    assert krippendorff_alpha(matrix, level="ordinal", domain=RUBRIC) is None
    assert fleiss_kappa(matrix, domain=RUBRIC) is None
    assert gwet_ac1(matrix, domain=RUBRIC) is None
    assert percent_agreement(matrix) is None
    assert cohen_kappa_pairs(matrix, domain=RUBRIC) == {"pairs": [], "mean": None}


@pytest.mark.parametrize("value", [0.0, 3.0])
def test_every_label_the_same(value):
    """All ties on a pairwise aspect (or one score everywhere): agreement is perfect, chance-corrected undefined."""
    matrix = np.full((20, 3), value)
    matrix[::4, 0] = NAN
    report = agreement_report(matrix, domain=[-3, -2, -1, 0, 1, 2, 3], ordinal=True, bootstrap=20)
    _assert_all_undefined(report, except_=("gwet_ac1", "percent_agreement"))
    assert report["gwet_ac1"] == 1.0  # AC1's chance agreement stays below 1: the figure is defined
    assert report["percent_agreement"] == 1.0
    assert any("every label has the same value" in note for note in report["notes"])


def test_single_value_domain():
    matrix = np.ones((5, 3))
    report = agreement_report(matrix, domain=[1], ordinal=False)
    _assert_all_undefined(report, except_=("percent_agreement",))
    assert report["percent_agreement"] == 1.0
    assert any("single value" in note for note in report["notes"])


def test_values_outside_the_domain_are_an_error():
    with pytest.raises(ValueError, match="outside the domain"):
        krippendorff_alpha(np.array([[1.0, 7.0]]), level="nominal", domain=RUBRIC)
    with pytest.raises(ValueError, match="increasing order"):
        krippendorff_alpha(np.array([[1.0, 2.0]]), level="ordinal", domain=[2, 1, 0])


# ---------------------------------------------------------------------------------------------------------
# The report


def test_report_shape():
    report = agreement_report(noisy_matrix(1), domain=RUBRIC, ordinal=True, bootstrap=100, seed=3)
    assert set(report) == {
        "n_items_multi",
        "krippendorff_alpha",
        "fleiss_kappa",
        "cohen_kappa_mean",
        "cohen_kappa_quadratic_mean",
        "gwet_ac1",
        "percent_agreement",
        "ci95",
        "notes",
    }
    assert set(report["krippendorff_alpha"]) == {"nominal", "ordinal", "interval"}
    low, high = report["ci95"]["krippendorff_alpha_ordinal"]
    assert low <= report["krippendorff_alpha"]["ordinal"] <= high
    assert all(isinstance(note, str) for note in report["notes"])
    assert "ci95" not in agreement_report(noisy_matrix(1), domain=RUBRIC, ordinal=True)


def test_report_for_a_nominal_domain():
    report = agreement_report(noisy_matrix(2), domain=RUBRIC, ordinal=False, bootstrap=50)
    assert report["krippendorff_alpha"]["ordinal"] is None
    assert report["cohen_kappa_quadratic_mean"] is None
    assert report["krippendorff_alpha"]["nominal"] is not None
    assert set(report["ci95"]) == {"krippendorff_alpha_nominal", *INTERVALS}


def test_report_figures_are_the_functions():
    matrix = noisy_matrix(4)
    report = agreement_report(matrix, domain=RUBRIC, ordinal=True)
    assert report["krippendorff_alpha"]["interval"] == krippendorff_alpha(matrix, level="interval", domain=RUBRIC)
    assert report["fleiss_kappa"] == fleiss_kappa(matrix, domain=RUBRIC)
    assert report["gwet_ac1"] == gwet_ac1(matrix, domain=RUBRIC)
    assert report["percent_agreement"] == pytest.approx(percent_agreement(matrix), abs=1e-15)
    assert report["cohen_kappa_quadratic_mean"] == cohen_kappa_pairs(matrix, domain=RUBRIC, weights="quadratic")["mean"]
    assert report["n_items_multi"] == int(((~np.isnan(matrix)).sum(axis=1) >= 2).sum())


def test_nullable_integer_frames_are_accepted():
    frame = pd.DataFrame({"a": [1, 2, None, 3], "b": [1, 2, 2, None]}, dtype="Int64")
    expected = krippendorff_alpha(frame.to_numpy(dtype=float, na_value=np.nan), level="nominal", domain=[1, 2, 3])
    assert krippendorff_alpha(frame, level="nominal", domain=[1, 2, 3]) == expected == 1.0


def test_rating_matrix_from_long_labels():
    labels = pd.DataFrame({"item": [1, 1, 2, 3], "rater": ["a", "b", "a", "b"], "value": [0, 1, -1, 2]})
    matrix = rating_matrix(labels)
    assert matrix.loc[1, "b"] == 1 and math.isnan(matrix.loc[2, "b"])
    with pytest.raises(ValueError):
        rating_matrix(pd.concat([labels, labels.iloc[:1]]))


# ---------------------------------------------------------------------------------------------------------
# Bootstrap


def test_pattern_resampling_is_item_resampling():
    """Weighting count patterns by how often a resample drew them gives the resampled matrix's alpha exactly."""
    matrix = noisy_matrix(5, n_items=200, missing=0.3)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(matrix), len(matrix))
    patterns, _ = _patterns(value_counts(matrix, domain=RUBRIC))
    drawn = value_counts(matrix[rows], domain=RUBRIC)
    weights = np.array([[(drawn == p).all(axis=1).sum() for p in patterns]], dtype=float)
    for level in LEVELS:
        statistic = count_statistic(f"krippendorff_alpha_{level}", domain=RUBRIC)
        expected = krippendorff.alpha(reliability_data=matrix[rows].T, value_domain=RUBRIC, level_of_measurement=level)
        assert statistic.batch(patterns, weights)[0] == pytest.approx(expected, abs=1e-12)
    for name in ("fleiss_kappa", "gwet_ac1", "percent_agreement"):
        statistic = count_statistic(name, domain=RUBRIC)
        assert statistic.batch(patterns, weights)[0] == pytest.approx(statistic(matrix[rows]), abs=1e-12)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    matrix = noisy_matrix(6, n_items=400)
    statistic = count_statistic("krippendorff_alpha_ordinal", domain=RUBRIC)
    interval = bootstrap_ci(matrix, statistic, n=500, seed=1)
    assert interval[0] < statistic(matrix) < interval[1]
    assert bootstrap_ci(matrix, statistic, n=500, seed=1) == interval
    assert bootstrap_ci(matrix, statistic, n=500, seed=2) != interval


def test_bootstrap_fast_and_generic_paths_agree():
    matrix = noisy_matrix(8, n_items=300)
    fast = bootstrap_ci(matrix, count_statistic("gwet_ac1", domain=RUBRIC), n=400, seed=0)
    slow = bootstrap_ci(matrix, lambda m: gwet_ac1(m, domain=RUBRIC), n=400, seed=0)
    assert fast == pytest.approx(slow, abs=0.02)  # different draws, same distribution


def test_bootstrap_of_any_statistic():
    matrix = noisy_matrix(9, n_items=150)
    interval = bootstrap_ci(matrix, lambda m: cohen_kappa_pairs(m, domain=RUBRIC)["mean"], n=50, seed=0)
    point = cohen_kappa_pairs(matrix, domain=RUBRIC)["mean"]
    assert interval[0] < point < interval[1]
    assert bootstrap_ci(np.full((3, 2), NAN), lambda m: 1.0, n=5, seed=0) is None


def test_pairs_cover_every_co_rated_pair():
    matrix = noisy_matrix(10, n_items=50, n_raters=6, missing=0.5)
    result = cohen_kappa_pairs(matrix, domain=RUBRIC, min_items=1)
    present = ~np.isnan(matrix)
    expected = {
        (a, b): int((present[:, a] & present[:, b]).sum())
        for a, b in itertools.combinations(range(6), 2)
        if (present[:, a] & present[:, b]).any()
    }
    assert {tuple(p["raters"]): p["n_items"] for p in result["pairs"]} == expected


# ---------------------------------------------------------------------------------------------------------
# Intervals of Fleiss' kappa, Cohen's kappa and AC1


def test_kappa_and_ac1_intervals_cover_the_references():
    """On complete data every figure has a reference or a formula: statsmodels' Fleiss, scikit-learn's Cohen per
    pair; each interval holds its estimate, and is reproducible from the seed."""
    matrix = noisy_matrix(11, n_items=400, n_raters=4, missing=0.0)
    report = agreement_report(matrix, domain=RUBRIC, ordinal=True, bootstrap=400, seed=5)
    counts, _ = aggregate_raters(matrix.astype(int), n_cat=len(RUBRIC))
    sklearn_mean = np.mean(
        [cohen_kappa_score(matrix[:, a], matrix[:, b]) for a, b in itertools.combinations(range(4), 2)]
    )
    references = {
        "fleiss_kappa": sm_fleiss_kappa(counts, method="fleiss"),
        "cohen_kappa_mean": sklearn_mean,
        "gwet_ac1": gwet_ac1(matrix, domain=RUBRIC),
    }
    for name, reference in references.items():
        low, high = report["ci95"][name]
        assert report[name] == pytest.approx(reference, abs=1e-12), name
        assert low < reference < high, name
        assert high - low < 0.2, name  # 400 items pin a kappa to a few hundredths
    again = agreement_report(matrix, domain=RUBRIC, ordinal=True, bootstrap=400, seed=5)["ci95"]
    assert again == report["ci95"]
    other = agreement_report(matrix, domain=RUBRIC, ordinal=True, bootstrap=400, seed=6)["ci95"]
    assert all(other[name] != report["ci95"][name] for name in INTERVALS)


def test_intervals_narrow_with_more_items():
    small = agreement_report(noisy_matrix(12, n_items=60), domain=RUBRIC, ordinal=True, bootstrap=300)["ci95"]
    large = agreement_report(noisy_matrix(12, n_items=2000), domain=RUBRIC, ordinal=True, bootstrap=300)["ci95"]
    for name in INTERVALS:
        assert large[name][1] - large[name][0] < (small[name][1] - small[name][0]) / 2, name


def _slow_cohen_interval(matrix: np.ndarray, *, n: int, seed: int) -> tuple[float, float]:
    """The Cohen's kappa bootstrap the slow way: the same draws of distinct label rows, each resample's matrix
    rebuilt item by item, and scikit-learn's kappa for every pair the estimate averages."""
    labelled = matrix[~np.isnan(matrix).all(axis=1)]
    codes = np.where(np.isnan(labelled), -1, labelled).astype(np.int64)
    rows, freq = np.unique(codes, axis=0, return_counts=True)
    pairs = [tuple(p["raters"]) for p in cohen_kappa_pairs(matrix, domain=RUBRIC)["pairs"]]
    draws = np.random.default_rng(seed).multinomial(len(labelled), freq / freq.sum(), size=n)
    estimates = []
    for draw in draws:
        sample = np.repeat(rows, draw, axis=0).astype(float)
        sample[sample < 0] = np.nan
        kappas = []
        for a, b in pairs:
            both = ~np.isnan(sample[:, a]) & ~np.isnan(sample[:, b])
            x, y = sample[both, a], sample[both, b]
            if both.sum() < 2 or (len(set(x)) == 1 and set(x) == set(y)):
                continue  # undefined here, as in the fast path (sklearn would say nan with a warning)
            kappas.append(cohen_kappa_score(x, y))
        kappas = [k for k in kappas if np.isfinite(k)]
        if kappas:
            estimates.append(np.mean(kappas))
    low, high = np.quantile(estimates, [0.025, 0.975])
    return float(low), float(high)


@pytest.mark.parametrize("seed", [0, 1])
def test_cohen_interval_is_the_slow_bootstrap(seed):
    # Codes equal values on RUBRIC (0-4), so the slow path can rebuild the matrix from its distinct rows.
    matrix = noisy_matrix(13 + seed, n_items=120, n_raters=4, missing=0.3)
    fast = agreement_report(matrix, domain=RUBRIC, ordinal=True, bootstrap=60, seed=seed)["ci95"]["cohen_kappa_mean"]
    assert fast == pytest.approx(_slow_cohen_interval(matrix, n=60, seed=seed), abs=1e-9)


def test_pair_rows_name_their_items():
    matrix = np.array([[1.0, 2.0, NAN], [NAN, 3.0, 3.0], [4.0, NAN, NAN]])
    a, b, va, vb, item = _pair_rows(np.where(np.isnan(matrix), -1, matrix).astype(np.int64))
    assert sorted(zip(item.tolist(), a.tolist(), b.tolist(), va.tolist(), vb.tolist(), strict=True)) == [
        (0, 0, 1, 1, 2),
        (1, 1, 2, 3, 3),
    ]


def test_one_reason_for_every_figure_is_said_once():
    report = agreement_report(np.full((3, 2), NAN), domain=RUBRIC, ordinal=True, bootstrap=0)
    assert report["notes"] == ["no figure yet: there are no labels"]
    some = agreement_report(np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]), domain=RUBRIC, ordinal=True, bootstrap=0)
    assert not any(note.startswith("no figure yet") for note in some["notes"])
