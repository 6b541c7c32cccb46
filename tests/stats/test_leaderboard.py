"""Bradley–Terry leaderboards: recovering known strengths, ties as half, bootstrap intervals, odd graphs."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from annotate import schema as label_schema
from annotate.exports.aggregate import aggregate_items
from annotate.stats.leaderboard import bradley_terry, bradley_terry_bootstrap, hybrid_outcomes, win_rate_matrix
from tests.exports import human, judge


def tournament(seed: int, ratings: dict[str, float], n: int = 4000, tie_rate: float = 0.1) -> pd.DataFrame:
    """Random pairings; winners drawn from the Elo-scale Bradley–Terry model; some ties."""
    rng = np.random.default_rng(seed)
    names = list(ratings)
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    r = np.array([ratings[m] for m in names])
    p_a = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    outcome = np.where(rng.random(n) < p_a, -1, 1)
    outcome[rng.random(n) < tie_rate] = 0
    return pd.DataFrame({"model_a": np.array(names)[a], "model_b": np.array(names)[b], "outcome": outcome})


TRUE = {"alpha": 1200.0, "bravo": 1100.0, "charlie": 1000.0, "delta": 950.0, "echo": 750.0}


def test_recovers_the_order_and_the_spread():
    result = bradley_terry(tournament(0, TRUE, tie_rate=0.0))
    assert list(result.table.index) == list(TRUE)
    assert result.table["rating"].mean() == pytest.approx(1000)
    fitted = result.table["rating"]
    assert fitted["alpha"] - fitted["echo"] == pytest.approx(450, abs=40)
    assert result.notes == []


def test_matches_a_logistic_regression():
    """The same maximum likelihood as statsmodels' binomial GLM with a tie as half a win."""
    frame = tournament(1, TRUE, n=1500)
    models = sorted(TRUE)
    design = np.zeros((len(frame), len(models)))
    design[np.arange(len(frame)), [models.index(m) for m in frame["model_a"]]] = 1
    design[np.arange(len(frame)), [models.index(m) for m in frame["model_b"]]] = -1
    score_a = (1 - np.sign(frame["outcome"])) / 2
    fit = sm.GLM(score_a.to_numpy(), design[:, 1:], family=sm.families.Binomial()).fit()  # first model fixed at 0
    coefficients = np.concatenate([[0.0], fit.params])
    expected = 400 * coefficients / np.log(10)
    expected = expected - expected.mean() + 1000
    ours = bradley_terry(frame, prior=1e-9).table["rating"].reindex(models)
    assert ours.to_numpy() == pytest.approx(expected, abs=1e-3)


def test_a_tie_counts_half_a_win_for_each():
    with_ties = pd.DataFrame(
        {"model_a": ["x"] * 6, "model_b": ["y"] * 6, "outcome": [-1, -1, -1, 0, 0, 1]}
    )  # x: 3 wins + 2 halves = 4 of 6
    without = pd.DataFrame({"model_a": ["x"] * 6, "model_b": ["y"] * 6, "outcome": [-1, -1, -1, -1, 1, 1]})
    assert bradley_terry(with_ties).table["rating"].to_dict() == pytest.approx(
        bradley_terry(without).table["rating"].to_dict()
    )
    only_ties = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "outcome": [0, 0]})
    assert bradley_terry(only_ties).table["rating"].tolist() == pytest.approx([1000, 1000])
    table = bradley_terry(with_ties).table
    assert table.loc["x", ["wins", "ties", "losses", "n"]].tolist() == [3, 2, 1, 6]


def test_orientation_does_not_matter():
    frame = tournament(2, TRUE, n=500)
    flipped = frame.rename(columns={"model_a": "model_b", "model_b": "model_a"}).assign(outcome=-frame["outcome"])
    assert bradley_terry(flipped).table["rating"].to_dict() == pytest.approx(
        bradley_terry(frame).table["rating"].to_dict()
    )


def test_raw_pairwise_values_use_their_sign():
    frame = tournament(3, TRUE, n=500)
    strengths = frame.assign(outcome=frame["outcome"] * np.random.default_rng(0).integers(1, 4, len(frame)))
    assert bradley_terry(strengths).table["rating"].to_dict() == pytest.approx(
        bradley_terry(frame).table["rating"].to_dict()
    )


def test_bootstrap_intervals_contain_the_estimate():
    frame = tournament(4, TRUE, n=2000)
    result = bradley_terry_bootstrap(frame, n=300, seed=0)
    table = result.table
    assert ((table["ci_low"] <= table["rating"]) & (table["rating"] <= table["ci_high"])).all()
    assert (table["ci_high"] - table["ci_low"] < 120).all()
    assert table[["rating", "n"]].equals(bradley_terry(frame).table[["rating", "n"]])
    again = bradley_terry_bootstrap(frame, n=300, seed=0).table
    assert again["ci_low"].equals(table["ci_low"])
    rows = result.rows()
    assert rows[0]["model"] == "alpha" and len(rows[0]["ci95"]) == 2 and isinstance(rows[0]["n"], int)


def test_rows_without_bootstrap():
    rows = bradley_terry(tournament(5, TRUE, n=300)).rows()
    assert {"model", "rating", "ci95", "n"} == set(rows[0]) and rows[0]["ci95"] is None


def test_disconnected_graph_is_reported():
    left = tournament(6, {"a": 1100.0, "b": 900.0, "c": 1000.0}, n=300)
    right = tournament(7, {"x": 1000.0, "y": 1000.0}, n=100)
    result = bradley_terry(pd.concat([left, right]))
    assert np.isfinite(result.table["rating"]).all()
    assert result.table.loc[["a", "b", "c"], "component"].eq(0).all()
    assert result.table.loc[["x", "y"], "component"].eq(1).all()
    note = next(n for n in result.notes if "disconnected" in n)
    assert "0: a, b, c" in note and "1: x, y" in note


def test_perfect_records_and_thin_models_are_named():
    frame = pd.concat(
        [
            tournament(8, {"a": 1000.0, "b": 1000.0}, n=200),
            pd.DataFrame({"model_a": ["champ"] * 5, "model_b": ["a"] * 5, "outcome": [-1] * 5}),
        ]
    )
    result = bradley_terry(frame)
    assert np.isfinite(result.table.loc["champ", "rating"])
    assert result.table.index[0] == "champ"
    assert any("never lost or never won" in n and "champ" in n for n in result.notes)
    assert any("fewer than 10 comparisons" in n and "champ" in n for n in result.notes)


def test_unusable_rows_and_empty_input():
    frame = pd.DataFrame(
        {"model_a": ["a", "a", "a", None], "model_b": ["b", "a", "b", "b"], "outcome": [-1, 1, np.nan, 1]}
    )
    result = bradley_terry(frame)
    assert list(result.table.index) == ["a", "b"] and result.table["n"].tolist() == [1, 1]
    assert any("with itself" in n for n in result.notes)
    assert any("without an outcome" in n for n in result.notes)
    empty = bradley_terry(pd.DataFrame(columns=["model_a", "model_b", "outcome"]))
    assert empty.table.empty and empty.notes == ["no comparisons"]
    assert bradley_terry_bootstrap(pd.DataFrame(columns=["model_a", "model_b", "outcome"]), n=10).table.empty
    with pytest.raises(ValueError):
        bradley_terry(frame, prior=0)


def test_win_rate_matrix():
    frame = pd.DataFrame(
        {"model_a": ["x", "x", "y", "x", "z"], "model_b": ["y", "y", "x", "z", "x"], "outcome": [-1, 0, -1, 1, 1]}
    )
    rates = win_rate_matrix(frame)
    # x vs y: x wins, tie, y wins (as A) -> x scores 1.5 of 3. x vs z: z wins (as B), x wins (as B) -> 1 of 2.
    assert rates.loc["x", "y"] == pytest.approx(0.5) and rates.loc["y", "x"] == pytest.approx(0.5)
    assert rates.loc["x", "z"] == pytest.approx(0.5)
    assert np.isnan(rates.loc["y", "z"]) and np.isnan(rates.loc["x", "x"])
    skewed = win_rate_matrix(
        pd.DataFrame({"model_a": ["p", "p", "q"], "model_b": ["q", "q", "p"], "outcome": [-1, 0, 1]})
    )
    assert skewed.loc["p", "q"] == pytest.approx(2.5 / 3) and skewed.loc["q", "p"] == pytest.approx(0.5 / 3)


def test_hybrid_outcomes_decide_as_the_exports_do():
    """One rule for "no strict majority": the hybrid board and the hybrid export keep and drop the same items."""
    rng = np.random.default_rng(7)
    schema = label_schema.schema_validate(label_schema.preset("helpsteer2-preference"), "pairwise")
    batch, long, verdicts = [], [], {}
    for i in range(300):
        values = rng.integers(-3, 4, rng.integers(0, 5)).tolist()
        labels = [human(i, f"a{n}", {"overall": v}) for n, v in enumerate(values)]
        long += [(i, v) for v in values]
        if not values or rng.random() < 0.5:
            verdict = int(rng.integers(-1, 2))
            labels.append(judge(i, {"overall": verdict}))  # one judge: its label is the verdict
            verdicts[i] = float(verdict)
        batch.append(labels)
    adjudicated = pd.Series({i: 1.0 for i in range(0, 300, 25)}, dtype=float)
    reviews = [{"label": {"overall": 1}} if i in adjudicated.index else None for i in range(300)]
    finals = aggregate_items(batch, schema=schema, kind="pairwise", source="hybrid", adjudications=reviews)
    outcomes, undecided = hybrid_outcomes(
        human_main=pd.DataFrame(long, columns=["item", "value"]), verdicts=pd.Series(verdicts), adjudicated=adjudicated
    )
    assert set(undecided) == {i for i, final in enumerate(finals) if final.undecided} != set()
    exported = {i: final.direction for i, final in enumerate(finals) if final.direction is not None}
    assert outcomes.astype(int).to_dict() == exported
