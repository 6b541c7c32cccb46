"""Per-annotator and per-judge figures: leave-one-out consensus, gold accuracy, position bias, consistency."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from annotate.stats.raters import judge_report, leave_one_out_agreement, majority_by_item, rater_report

NAN = np.nan


def labels(rows, columns=("item", "rater", "value", "position_swapped", "seconds", "gold")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns[: len(rows[0])]))


def by_rater(report: list[dict]) -> dict:
    return {row["rater"]: row for row in report}


def test_leave_one_out_consensus_by_hand():
    items = np.array([1, 1, 1, 2, 2, 3, 4, 4, 4, 4])
    values = np.array([5, 5, 4, 1, 2, 3, 1, 1, 2, 2])
    decided, agrees = leave_one_out_agreement(items, values)
    # Item 1: each 5 sees {5, 4} (a tie: undecided), the 4 sees {5, 5} (decided, disagrees).
    # Item 2: each sees one other label (decided, disagrees). Item 3: alone. Item 4: each 1 sees {1, 2, 2}
    # (majority 2: disagrees), each 2 sees {1, 1, 2} (majority 1: disagrees).
    assert decided.tolist() == [False, False, True, True, True, False, True, True, True, True]
    assert agrees.tolist() == [False] * 10
    decided, agrees = leave_one_out_agreement(np.array([1, 1, 1]), np.array([3, 3, 3]))
    assert decided.all() and agrees.all()


def test_rater_report_rubric():
    frame = labels(
        [
            (1, "ann", 4, None, 10.0, NAN),
            (1, "bob", 4, None, 20.0, NAN),
            (1, "cy", 2, None, None, NAN),
            (2, "ann", 1, None, 30.0, 1),
            (2, "bob", 1, None, 40.0, 1),
            (2, "cy", 1, None, None, 1),
            (3, "ann", 3, None, 50.0, NAN),
            (3, "bob", NAN, None, 60.0, NAN),  # no value for this criterion: ignored
        ]
    )
    report = by_rater(rater_report(frame, pairwise=False))
    assert list(report) == ["ann", "bob", "cy"]
    ann, bob, cy = report["ann"], report["bob"], report["cy"]
    assert ann["n"] == 3 and bob["n"] == 2 and cy["n"] == 2
    # ann: item 1, others {4, 2} tie: left out; item 2 agrees; item 3 alone: left out.
    assert ann["agreement_with_consensus"] == 1.0
    assert cy["agreement_with_consensus"] == 0.5  # item 1: others 4, 4, cy says 2; item 2 agrees
    assert ann["gold_accuracy"] == 1.0 and cy["gold_accuracy"] == 1.0
    assert ann["median_seconds"] == 30.0 and cy["median_seconds"] is None
    assert ann["position_bias"] is None and ann["tie_rate"] is None


def test_position_bias_uses_the_display_order():
    # "left" always picks the response shown on the left: A when not swapped (negative value), B when swapped.
    # "a_fan" always picks A, whatever side it is on. Ties and unknown orders do not count.
    rows = []
    for item in range(8):
        swapped = item % 2 == 1
        rows.append((item, "left", 2 if swapped else -1, swapped))
        rows.append((item, "a_fan", -2, swapped))
        rows.append((item, "tie_lover", 0 if item < 6 else -1, swapped))
    rows.append((9, "left", -1, None))
    report = by_rater(rater_report(labels(rows), pairwise=True))
    assert report["left"]["position_bias"] == 1.0
    assert report["a_fan"]["position_bias"] == 0.5
    assert report["tie_lover"]["position_bias"] == 0.5  # items 6 (not swapped: left) and 7 (swapped: right)
    assert report["tie_lover"]["tie_rate"] == 0.75
    assert report["left"]["tie_rate"] == 0.0
    assert report["left"]["n"] == 9


def test_position_bias_is_none_without_order_information():
    frame = labels([(1, "ann", -1), (1, "bob", 1)], columns=("item", "rater", "value"))
    report = by_rater(rater_report(frame, pairwise=True))
    assert report["ann"]["position_bias"] is None
    assert report["ann"]["gold_accuracy"] is None
    assert report["ann"]["median_seconds"] is None


def test_pairwise_matching_defaults_to_the_preferred_side():
    frame = labels(
        [(1, "ann", -2), (1, "bob", -1), (1, "cy", -1), (2, "ann", 1), (2, "bob", 2), (2, "cy", 0)],
        ("item", "rater", "value"),
    )
    signs = by_rater(rater_report(frame, pairwise=True))
    exact = by_rater(rater_report(frame, pairwise=True, match="exact"))
    assert signs["ann"]["agreement_with_consensus"] == 1.0  # item 1 agrees on A; item 2: others B, tie: undecided
    assert exact["ann"]["agreement_with_consensus"] == 0.0  # item 1: others say -1, ann -2
    with pytest.raises(ValueError):
        rater_report(frame, pairwise=True, match="close")


def test_empty_labels():
    assert rater_report(labels([(1, "ann", NAN)], ("item", "rater", "value")), pairwise=True) == []
    assert (
        judge_report(
            pd.DataFrame(columns=["item", "judge", "value", "position_swapped"]), pd.Series(dtype=float), pairwise=True
        )
        == []
    )


def judgments(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "judge", "value", "position_swapped", "parse_failed"])


def test_judge_report():
    human = pd.Series({1: -1.0, 2: 1.0, 3: 0.0, 4: NAN})
    frame = judgments(
        [
            (1, "gpt", -2, False, False),
            (1, "gpt", -1, True, False),  # consistent pair (both A)
            (2, "gpt", 1, False, False),
            (2, "gpt", -1, True, False),  # flipped with the order: inconsistent
            (3, "gpt", NAN, False, True),  # parse failure: its pair does not count
            (3, "gpt", 0, True, False),
            (4, "gpt", 1, False, False),  # no human majority: not scored, but consistent below
            (4, "gpt", 1, True, False),
            (1, "small", 1, False, False),
        ]
    )
    report = {row["judge"]: row for row in judge_report(frame, human, pairwise=True)}
    gpt = report["gpt"]
    assert gpt["n"] == 8
    assert gpt["parse_failure_rate"] == 1 / 8
    # Scored: item 1 (-1, -1 vs -1: both right), item 2 (1 right, -1 wrong), item 3 (0 right).
    assert gpt["accuracy_vs_human_majority"] == 4 / 5
    expected = cohen_kappa_score([-1, -1, 1, -1, 0], [-1, -1, 1, 1, 0])
    assert gpt["cohen_kappa_vs_human_majority"] == pytest.approx(expected)
    assert gpt["position_consistency"] == 2 / 3  # items 1 and 4 consistent, 2 not, 3 unpaired
    assert report["small"]["position_consistency"] is None
    assert report["small"]["accuracy_vs_human_majority"] == 0.0


def test_judge_pairs_are_per_sample():
    frame = judgments(
        [(1, "j", -1, False, False), (1, "j", -1, True, False), (1, "j", 1, False, False), (1, "j", 1, True, False)]
    )
    frame["sample_index"] = [0, 0, 1, 1]
    report = judge_report(frame, pd.Series({1: -1.0}), pairwise=True)[0]
    assert report["position_consistency"] == 1.0  # sample 0 agrees with itself, sample 1 too
    assert report["accuracy_vs_human_majority"] == 0.5


def test_majority_by_item():
    frame = pd.DataFrame({"item": [1, 1, 1, 2, 2, 3], "value": [-2, -1, 1, -1, 1, 0]})
    signs = majority_by_item(frame, pairwise=True)
    assert signs[1] == -1.0 and np.isnan(signs[2]) and signs[3] == 0.0
    exact = majority_by_item(frame, pairwise=True, match="exact")
    assert np.isnan(exact[1])
