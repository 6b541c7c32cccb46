"""routing_eval: the protocol on a hand-made example, cross-fitting, synthetic curves and the LLMBar converter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing import evaluation, features, policies
from routing.evaluation import llmbar_rows, routing_eval, strict_majority

LLMBAR = Path(__file__).resolve().parents[1] / "data" / "llmbar"


def _row(humans: list[int], *judges: tuple[int | None, int | None] | tuple[int | None]) -> dict:
    judge_labels = []
    for index, verdicts in enumerate(judges):
        entry = {"judge": f"j{index}", "label": None if verdicts[0] is None else {"overall": verdicts[0]}}
        if len(verdicts) > 1:
            entry["label_swapped"] = None if verdicts[1] is None else {"overall": verdicts[1]}
        judge_labels.append(entry)
    return {
        "prompt": "p",
        "response_a": "a",
        "response_b": "b",
        "human_labels": [{"annotator": f"h{i}", "label": {"overall": v}} for i, v in enumerate(humans)],
        "judge_labels": judge_labels,
    }


# Whatever stand-in each repetition draws:
HAND_MADE = [
    _row([-1, -2, -1], (-1, -1)),  # judge right, human right
    _row([1, 1, 2], (-1, -1)),  # judge wrong, human right
    _row([1, 1], (1,)),  # one other label is the gold; judge right, human right
    _row([-1, 1], (1, -1)),  # the stand-in always contradicts the gold; the judge flips to a tie: both wrong
    _row([1]),  # no other label: never evaluated
    _row([2, 1, 1], (None, None)),  # unparsable judge: wrong; human right
]


def test_strict_majority():
    got = strict_majority([[-1, -1, 1], [-1, 1], [1, 1, -1, 0], [-1, -1, 1, 0], [], [0]])
    # More than half, not the most frequent: A, A, B, tie has no gold (half the raters is not a majority).
    np.testing.assert_array_equal(got, [-1, np.nan, np.nan, np.nan, np.nan, 0])


def test_protocol_on_a_hand_made_example():
    out = routing_eval(
        HAND_MADE, budgets=(0.0, 1, 2, 1.0), policy_names=("random", "judge_uncertainty"), repeats=5, seed=3
    )
    assert out["n_items"] == 6 and out["n_evaluated_mean"] == 5
    assert out["all_llm"] == {"accuracy": pytest.approx(2 / 5), "ci95": [pytest.approx(2 / 5)] * 2}
    assert out["all_human"]["accuracy"] == pytest.approx(4 / 5)
    oracle = {key: point["accuracy"] for key, point in out["oracle"].items()}
    assert oracle == pytest.approx({"0": 2 / 5, "n=1": 3 / 5, "n=2": 4 / 5, "1": 4 / 5})
    uncertainty = {key: point["accuracy"] for key, point in out["policies"]["judge_uncertainty"].items()}
    # As in the live pass, the item no judge could label goes to humans first, past the budget (it gains one,
    # even at budget 0); then the flipped item (both wrong), which gains nothing.
    assert uncertainty["0"] == uncertainty["n=1"] == uncertainty["n=2"] == pytest.approx(3 / 5)
    random = out["policies"]["random"]
    assert random["0"]["accuracy"] == pytest.approx(3 / 5) and random["1"]["accuracy"] == pytest.approx(4 / 5)


def test_protocol_is_deterministic_by_seed():
    rows = _synthetic_rows(120, 0)
    first = routing_eval(rows, budgets=(0.25,), repeats=3, seed=5)
    assert first == routing_eval(rows, budgets=(0.25,), repeats=3, seed=5)
    assert json.loads(json.dumps(first)) == first


def test_unknown_policy_and_no_gold_are_errors():
    with pytest.raises(ValueError, match="unknown"):
        routing_eval(HAND_MADE, policy_names=("oracle",))
    with pytest.raises(ValueError, match="gold"):
        routing_eval([_row([1], (1,))], repeats=2)


def test_cross_fitting_never_sees_the_scored_items_target():
    X = np.random.default_rng(0).normal(size=(60, 3))
    wrong = (X[:, 0] > 0.5).astype(int)
    trainable = np.ones(60, dtype=bool)
    names = ["a", "b", "c"]
    fold_of = evaluation._folds(60, 5, seed=2)
    assert sorted(np.bincount(fold_of)) == [12] * 5
    base = evaluation._cross_fitted_probabilities(X, wrong, trainable, names, fold_of, seed=2)
    for item in (0, 17, 41):
        flipped = wrong.copy()
        flipped[item] = 1 - flipped[item]
        again = evaluation._cross_fitted_probabilities(X, flipped, trainable, names, fold_of, seed=2)
        same_fold = fold_of == fold_of[item]
        np.testing.assert_array_equal(again[same_fold], base[same_fold])


@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    budget=st.one_of(st.integers(0, 200), st.floats(0, 1)),
    seed=st.integers(0, 2**32 - 1),
)
def test_routing_within_folds_spends_the_budget_in_proportion(sizes, budget, seed):
    fold_of = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    scores = np.random.default_rng(seed).random(len(fold_of))
    signals = [{"label": {"overall": 1}}] * len(fold_of)  # every verdict usable: the budget is exactly spent
    routed = np.array(evaluation._route_within_folds(scores, fold_of, budget, seed, signals=signals)) == "human"
    k = policies.budget_count(len(fold_of), budget)
    assert routed.sum() == k
    for fold, size in enumerate(sizes):
        share = size * k / max(len(fold_of), 1)
        members = fold_of == fold
        assert np.floor(share) <= routed[members].sum() <= np.ceil(share)
        # within a fold, the highest scores go to humans
        if 0 < routed[members].sum() < size:
            assert scores[members][routed[members]].min() > scores[members][~routed[members]].max()


def _synthetic_rows(n: int, seed: int) -> list[dict]:
    """Three human labels (each right 85% of the time); two judges who err on long responses of similar length."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        truth = int(rng.choice([-1, 1]))
        hard = rng.random() < 0.3
        words = int(rng.integers(150, 250)) if hard else int(rng.integers(10, 60))
        other = words + int(rng.integers(-5, 5)) if hard else int(rng.integers(10, 120))
        humans = [truth if rng.random() < 0.85 else -truth for _ in range(3)]
        judge_truth = -truth if rng.random() < (0.55 if hard else 0.05) else truth
        judges = [(judge_truth, judge_truth if rng.random() < 0.9 else -judge_truth) for _ in range(2)]
        row = _row(humans, *judges)
        row.update(
            external_id=str(index),
            response_a=" ".join(["word"] * words),
            response_b=" ".join(["word"] * max(other, 1)),
            metadata={"domain": str(rng.choice(["code", "chat"]))},
        )
        rows.append(row)
    return rows


def test_learned_beats_random_on_synthetic_data():
    out = routing_eval(_synthetic_rows(300, 1), budgets=(0.25,), repeats=4, seed=0)
    accuracy = {name: out["policies"][name]["0.25"]["accuracy"] for name in out["policies"]}
    assert accuracy["learned"] > accuracy["random"] + 0.03
    assert accuracy["judge_uncertainty"] > accuracy["random"]
    assert out["oracle"]["0.25"]["accuracy"] >= accuracy["learned"]
    assert out["all_llm"]["accuracy"] < accuracy["learned"]
    importances = evaluation.learned_importances(_synthetic_rows(300, 1))
    lengths = {name for name in features.TEXT_FEATURES if "response" in name or "length" in name} | {"lexical_overlap"}
    assert set(list(importances)[:4]) & lengths  # the feature the synthetic judge errors follow


def _ratio(statistic: str) -> float:
    hits, total = statistic.split(" = ")[0].split(" / ")
    return int(hits) / int(total)


@pytest.mark.parametrize(("subset", "n"), [("natural", 100), ("neighbor", 134)])
def test_llmbar_rows(subset, n):
    results = json.loads((LLMBAR / subset / "gpt4-swap-result.json").read_text())
    statistics = json.loads((LLMBAR / subset / "gpt4-swap-statistics.json").read_text())
    # The result file carries each instance's fields, so it stands in for dataset.json here.
    rows = llmbar_rows(results, results, subset=subset)
    assert len(rows) == n
    for row, entry in zip(rows, results, strict=True):
        assert (row["prompt"], row["response_a"], row["response_b"]) == (
            entry["input"],
            entry["output_1"],
            entry["output_2"],
        )
        assert row["human_labels"][0]["label"]["overall"] == (-1 if entry["label"] == 1 else 1)
        last = entry["results"][-1]
        judge = row["judge_labels"][0]
        assert judge["label"]["overall"] == (-1 if last["swap = False"]["winner"] == "1" else 1)
        assert judge["label_swapped"]["overall"] == (-1 if last["swap = True"]["winner"] == "1" else 1)
    out = routing_eval(rows, budgets=(0.0, 1.0), policy_names=("random",), repeats=2, single_label_gold=True)
    assert out["n_evaluated_mean"] == n
    # A flip aggregates to a tie, never the gold: the all-LLM accuracy is LLMBar's both-orders-correct figure.
    assert out["all_llm"]["accuracy"] == pytest.approx(_ratio(statistics["correct_both"]))
    assert out["all_human"]["accuracy"] == 1.0
    with pytest.raises(ValueError):
        llmbar_rows(results, results[:-1])
