"""Label aggregation: majority vote and its tie rules, mean scores, soft labels, Dawid–Skene."""

import numpy as np
import pandas as pd
import pytest

from annotate.stats.aggregate import (
    POOLED_RATER,
    dawid_skene,
    majority_vote,
    majority_vote_long,
    mean_score,
    soft_labels,
)

NAN = np.nan
MATRIX = np.array(
    [
        [1, 1, 2],
        [-1, 1, NAN],
        [3, 4, NAN],
        [NAN, NAN, NAN],
        [0, 0, 0],
    ],
    dtype=float,
)


def test_majority_vote_tie_rules():
    none = majority_vote(MATRIX, tie_rule="none")
    assert none[0] == 1 and np.isnan(none[1]) and np.isnan(none[2]) and np.isnan(none[3]) and none[4] == 0
    tie = majority_vote(MATRIX, tie_rule="tie")
    assert tie[1] == 0 and tie[2] == 0 and np.isnan(tie[3])
    mean = majority_vote(MATRIX, tie_rule="mean")
    assert mean[1] == 0 and mean[2] == 3.5 and mean[0] == 1
    with pytest.raises(ValueError):
        majority_vote(MATRIX, tie_rule="coin")


def test_majority_vote_long_matches_the_matrix_version():
    frame = pd.DataFrame(MATRIX, index=list("vwxyz"), columns=["a", "b", "c"])
    long = frame.stack().rename("value").reset_index().rename(columns={"level_0": "item", "level_1": "rater"})
    expected = majority_vote(frame, tie_rule="mean").dropna()
    assert majority_vote_long(long, tie_rule="mean").dropna().sort_index().equals(expected.sort_index())


def test_dataframes_in_pandas_out():
    frame = pd.DataFrame(MATRIX, index=list("vwxyz"))
    assert list(majority_vote(frame).index) == list("vwxyz")
    assert mean_score(frame)["x"] == 3.5 and np.isnan(mean_score(frame)["y"])
    shares = soft_labels(frame, domain=[-1, 0, 1, 2, 3, 4])
    assert list(shares.columns) == [-1, 0, 1, 2, 3, 4]
    assert shares.loc["v", 1] == pytest.approx(2 / 3) and shares.loc["v", 2] == pytest.approx(1 / 3)
    assert shares.loc["y"].isna().all()
    assert np.allclose(shares.drop(index="y").sum(axis=1), 1)


def test_mean_score_array():
    result = mean_score(MATRIX)
    assert result[0] == pytest.approx(4 / 3) and np.isnan(result[3])


def simulated_labels(seed: int, n_items: int = 600):
    """Three fair raters (70% right, else a neighbour), one adversary (mirrors the scale), one coin-flipper."""
    rng = np.random.default_rng(seed)
    domain = np.array([-2, -1, 0, 1, 2])
    truth = rng.choice(domain, n_items, p=[0.15, 0.25, 0.2, 0.25, 0.15])
    rows = []
    for item, true in enumerate(truth):
        for rater in ("fair1", "fair2", "fair3"):
            value = true if rng.random() < 0.7 else np.clip(true + rng.choice([-1, 1]), -2, 2)
            rows.append((item, rater, value))
        rows.append((item, "adversary", -true))
        rows.append((item, "coin", rng.choice(domain)))
    return pd.DataFrame(rows, columns=["item", "rater", "value"]), truth, domain


def _majority_accuracy(frame: pd.DataFrame, truth: np.ndarray) -> float:
    """Expected accuracy of majority vote with a fair coin between tied values."""
    total = 0.0
    for item, group in frame.groupby("item"):
        counts = group["value"].value_counts()
        top = counts[counts == counts.max()].index
        total += (truth[item] in top) / len(top)
    return total / len(truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_beats_majority_vote_with_an_adversary(seed):
    frame, truth, domain = simulated_labels(seed)
    result = dawid_skene(frame, domain=domain)
    assert result.method == "dawid_skene" and result.converged
    ds_accuracy = (result.labels.sort_index().to_numpy() == truth).mean()
    mv_accuracy = _majority_accuracy(frame, truth)
    assert ds_accuracy > mv_accuracy + 0.05, (ds_accuracy, mv_accuracy)
    # The adversary's confusion matrix is the mirror: true 2 is reported as -2.
    adversary = result.confusion["adversary"]
    assert adversary.loc[2, -2] > 0.9 and adversary.loc[-1, 1] > 0.9
    assert result.confusion["fair1"].loc[0, 0] > 0.6
    assert np.allclose(result.posterior.sum(axis=1), 1)
    assert result.priors.sum() == pytest.approx(1)


def test_dawid_skene_pools_raters_with_few_labels():
    frame, truth, domain = simulated_labels(3, n_items=200)
    extra = pd.DataFrame(
        {"item": [0, 1, 2], "rater": ["new1", "new2", "new2"], "value": [truth[0], truth[1], truth[2]]}
    )
    result = dawid_skene(pd.concat([frame, extra]), domain=domain, min_labels_per_rater=5)
    assert POOLED_RATER in result.confusion and "new1" not in result.confusion
    assert any("2 rater(s) with fewer than 5 labels" in note for note in result.notes)


def test_dawid_skene_falls_back_to_majority_with_one_usable_rater():
    frame = pd.DataFrame(
        {"item": [1, 1, 1, 2, 2, 3], "rater": ["a", "b", "c", "a", "b", "a"], "value": [1, 1, 0, 0, 1, 1]}
    )
    result = dawid_skene(frame, domain=[0, 1], min_labels_per_rater=3)
    assert result.method == "majority"
    assert any("majority" in note for note in result.notes)
    assert result.labels[1] == 1 and np.isnan(result.labels[2]) and result.labels[3] == 1
    assert result.posterior.loc[1, 1] == pytest.approx(2 / 3)
    assert result.confusion == {}


def test_dawid_skene_rejects_values_outside_the_domain():
    frame = pd.DataFrame({"item": [1], "rater": ["a"], "value": [7]})
    with pytest.raises(ValueError, match="outside the domain"):
        dawid_skene(frame, domain=[0, 1])
