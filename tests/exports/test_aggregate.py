"""Final labels: which labels count per source, the pairwise winner and its tie rule, strength, agreement, means."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate import schema as label_schema
from annotate.exports.aggregate import aggregate_item, aggregate_items

from . import campaign, human, judge, reference_direction

PAIRWISE = label_schema.schema_validate(label_schema.preset("helpsteer2-preference"), "pairwise")
RUBRIC = label_schema.schema_validate(label_schema.preset("helpsteer2"), "rubric")


def votes(*values: int) -> list[dict]:
    return [human("i", f"a{n}", {"overall": v}) for n, v in enumerate(values)]


def final(labels, source="human", schema=PAIRWISE, kind="pairwise"):
    return aggregate_item(labels, schema=schema, kind=kind, source=source)


def test_majority_direction_strength_on_the_winning_side_and_agreement():
    got = final(votes(-1, -3, 2))
    assert got.direction == -1
    # Mean of the labels for A only (−1, −3): the sign always says who won; the dissent is in `agreement`.
    assert got.preference_strength == -2.0
    assert got.agreement == pytest.approx(2 / 3)
    assert got.n_votes == 3 and got.source == "human"


def test_no_strict_majority_of_directions_is_undecided_not_a_tie():
    for split in (final(votes(-2, 3)), final(votes(-1, 0, 1)), final(votes(0, 1))):
        assert (split.direction, split.preference_strength, split.agreement) == (None, None, None)
        assert split.undecided and split.final_source is None
    said_tie = final(votes(0, 0, 2))  # a strict majority for "tie" is a tie
    assert (said_tie.direction, said_tie.preference_strength, said_tie.undecided) == (0, 0.0, False)
    assert said_tie.final_source == "majority"
    assert not final([judge("i", None)], "judge").undecided  # no vote at all is not undecided: no labels


def test_sources_hybrid_prefers_humans_and_judges_never_count_parse_failures():
    labels = [human("i", "a", {"overall": 2}), judge("i", {"overall": -3}), judge("i", {"overall": -1})]
    assert final(labels, "human").direction == 1
    assert final(labels, "judge").direction == -1
    assert final(labels, "judge").preference_strength == -2.0
    assert final(labels, "hybrid").source == "human"
    only_judges = [judge("i", {"overall": 1}), judge("i", None), judge("i", None)]
    got = final(only_judges, "hybrid")
    assert (got.source, got.direction, got.n_votes, got.agreement) == ("judge", 1, 1, 1.0)
    assert len(got.labels) == 1
    nothing = final([judge("i", None)], "judge")
    assert (nothing.source, nothing.direction, nothing.preference_strength) == (None, None, None)


def test_rubric_means_per_criterion_and_per_response_on_both():
    labels = [
        human("i", "a", {"helpfulness": 4, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2}),
        human("i", "b", {"helpfulness": 3, "correctness": 3, "coherence": 4, "complexity": 2, "verbosity": 2}),
        judge("i", {"helpfulness": 0}),
    ]
    got = final(labels, "judge", RUBRIC, "rubric")
    assert got.scores["helpfulness"] == 0.0 and got.scores["correctness"] is None
    assert got.score_counts == {"helpfulness": 1, "correctness": 0, "coherence": 0, "complexity": 0, "verbosity": 0}
    got = final(labels, "human", RUBRIC, "rubric")
    assert got.scores["helpfulness"] == 3.5 and got.scores["complexity"] == 1.5 and got.direction is None
    both, _ = campaign(1, kind="both")
    label = {key.name: 1 for key in label_schema.label_keys(both, "both")}
    label["helpfulness_a"], label["overall"] = 4, -1
    got = final([human("i", "a", label)], "human", both, "both")
    assert (got.scores["helpfulness_a"], got.scores["helpfulness_b"], got.direction) == (4.0, 1.0, -1)


def test_batches_give_what_single_items_give():
    schema, pairs = campaign(60, seed=3)
    batch = aggregate_items([labels for _, labels in pairs], schema=schema, kind="pairwise", source="hybrid")
    assert batch == [aggregate_item(labels, schema=schema, kind="pairwise", source="hybrid") for _, labels in pairs]
    assert aggregate_items([], schema=schema, kind="pairwise", source="hybrid") == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["human", "judge"]), st.integers(-3, 3), st.booleans()), max_size=7),
    st.sampled_from(["human", "judge", "hybrid"]),
)
def test_laws_against_a_slow_reference(raw, source):
    labels = [
        human("i", f"a{n}", {"overall": v}) if who == "human" else judge("i", None if failed else {"overall": v})
        for n, (who, v, failed) in enumerate(raw)
    ]
    got = final(labels, source)
    assert got.direction == reference_direction(labels, source)
    if got.direction is None:
        assert got.preference_strength is None and got.agreement is None
        assert got.undecided == (got.n_votes > 0)
        return
    assert 0.0 <= got.agreement <= 1.0
    assert -3 <= got.preference_strength <= 3
    # The strength's sign is the winner's (0 for a tie), and the counted labels are one source's.
    assert (got.preference_strength > 0) - (got.preference_strength < 0) == got.direction
    assert {label["source"] for label in got.labels} == {got.source}


def test_an_adjudication_is_the_final_label_and_the_labels_still_measure_agreement():
    labels = votes(-1, 1, 0)  # no strict majority: undecided without the review
    review = {"label": {"overall": 2}, "reason": "B cites the source.", "revision": 1, "adjudicated_at": None}
    got = aggregate_item(labels, schema=PAIRWISE, kind="pairwise", source="human", adjudication=review)
    assert (got.direction, got.preference_strength, got.undecided) == (1, 2.0, False)
    assert got.final_source == "adjudicated" and got.adjudication == review
    assert got.agreement == pytest.approx(1 / 3) and got.n_votes == 3
    # With nothing counted, the reviewer's label still stands (no agreement to measure).
    alone = aggregate_item([], schema=PAIRWISE, kind="pairwise", source="human", adjudication=review)
    assert (alone.direction, alone.agreement, alone.final_source) == (1, None, "adjudicated")


def test_an_adjudication_gives_the_rubric_scores_it_names():
    labels = [human("i", "a", {"helpfulness": 1, "correctness": 2}), human("i", "b", {"helpfulness": 3})]
    review = {"label": {"helpfulness": 4}, "reason": "Complete.", "revision": 2, "adjudicated_at": None}
    got = aggregate_item(labels, schema=RUBRIC, kind="rubric", source="human", adjudication=review)
    assert got.scores["helpfulness"] == 4.0 and got.scores["correctness"] == 2.0
    assert got.final_source == "adjudicated"
    assert final(labels, "human", RUBRIC, "rubric").final_source == "mean"


def test_soft_labels_are_the_vote_shares_over_the_whole_scale():
    got = final(votes(-3, -3, 1, 2))
    assert got.soft_labels == (0.5, 0.0, 0.0, 0.0, 0.25, 0.25, 0.0)  # -3 … 3
    assert final([judge("i", None)], "judge").soft_labels is None


def test_dawid_skene_takes_the_models_winner():
    labels = votes(-1, -1, 1)
    got = aggregate_item(labels, schema=PAIRWISE, kind="pairwise", source="human", aggregation="dawid_skene", winner=1)
    assert (got.direction, got.final_source, got.preference_strength) == (1, "dawid_skene", 1.0)
    assert got.agreement == pytest.approx(1 / 3)
    tied = aggregate_item(
        labels, schema=PAIRWISE, kind="pairwise", source="human", aggregation="dawid_skene", winner=float("nan")
    )
    assert tied.undecided and tied.direction is None  # the model's top posteriors tie: undecided too
    with pytest.raises(ValueError, match="winner for every item"):
        aggregate_items([labels], schema=PAIRWISE, kind="pairwise", source="human", aggregation="dawid_skene")
