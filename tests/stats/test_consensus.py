"""The dispute rule of dynamic overlap: split majorities, low agreement, rubric distance, judge disagreement."""

import statistics

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from annotate import schema as label_schema
from annotate.stats.consensus import label_consensus, primary_key, rubric_distance, verdict_differs


def _schema(preset: str) -> tuple[dict, str]:
    kind = label_schema.PRESET_KINDS[preset]
    return label_schema.schema_validate(label_schema.preset(preset), kind), kind


PAIRWISE, _ = _schema("multipref")
RUBRIC, _ = _schema("helpsteer2")
BOTH = label_schema.schema_validate(
    {
        "pairwise": label_schema.preset("simple-pairwise")["pairwise"],
        "rubric": label_schema.preset("prometheus")["rubric"],
    },
    "both",
)
KINDS = {"pairwise": PAIRWISE, "rubric": RUBRIC, "both": BOTH}


def disputed(labels, schema=PAIRWISE, kind="pairwise", threshold=0.6):
    return label_consensus(labels, schema=schema, kind=kind, threshold=threshold)


def test_the_primary_key_is_overall_else_the_first_criterion():
    assert primary_key(schema=PAIRWISE, kind="pairwise").name == "overall"
    assert primary_key(schema=RUBRIC, kind="rubric").name == "helpfulness"
    assert primary_key(schema=BOTH, kind="both").name == "overall"


def test_pairwise_sides_not_strengths_decide():
    # "A is much better" and "A is better" are the same side: no dispute.
    result = disputed([{"overall": -2}, {"overall": -1}, {"overall": -2}])
    assert (result.disputed, result.agreement, result.majority) == (False, 1.0, -1)


def test_a_split_is_disputed():
    result = disputed([{"overall": -1}, {"overall": 1}])
    assert (result.disputed, result.reason, result.majority, result.agreement) == (True, "split", None, 0.5)
    assert disputed([{"overall": -1}, {"overall": 0}, {"overall": 1}]).reason == "split"


def test_a_majority_below_the_threshold_is_disputed():
    labels = [{"overall": -1}, {"overall": -2}, {"overall": 0}, {"overall": 1}]  # A has 2 of 4
    result = disputed(labels, threshold=0.6)
    assert (result.disputed, result.reason, result.majority, result.agreement) == (True, "low_agreement", -1, 0.5)
    assert not disputed(labels, threshold=0.5).disputed
    two_of_three = [{"overall": 1}, {"overall": 2}, {"overall": -1}]
    assert not disputed(two_of_three, threshold=0.6).disputed
    assert disputed(two_of_three, threshold=0.7).reason == "low_agreement"


def test_other_aspects_do_not_dispute_a_pairwise_item():
    labels = [{"overall": 1, "helpfulness": -2}, {"overall": 1, "helpfulness": 2}]
    assert not disputed(labels).disputed


def test_rubric_distance_is_mean_pairwise_gap_over_the_range():
    labels = [{"helpfulness": 0}, {"helpfulness": 4}]
    assert rubric_distance(labels, schema=RUBRIC, kind="rubric") == 1.0
    labels = [{"helpfulness": 3, "correctness": 2}, {"helpfulness": 3, "correctness": 4}]
    assert rubric_distance(labels, schema=RUBRIC, kind="rubric") == pytest.approx((0 + 2 / 4) / 2)


def test_rubric_scores_far_apart_are_disputed_close_ones_not():
    near = [{"helpfulness": 3, "correctness": 3}, {"helpfulness": 3, "correctness": 4}, {"helpfulness": 4}]
    assert not disputed(near, RUBRIC, "rubric", threshold=0.6).disputed
    far = [{"helpfulness": 0, "correctness": 0}, {"helpfulness": 0, "correctness": 4}, {"helpfulness": 4}]
    result = disputed(far, RUBRIC, "rubric", threshold=0.6)
    assert (result.disputed, result.reason, result.majority) == (True, "distance", 0)


def test_rubric_without_a_strict_majority_on_the_first_criterion_is_split():
    result = disputed([{"helpfulness": 2}, {"helpfulness": 3}], RUBRIC, "rubric")
    assert (result.disputed, result.reason) == (True, "split")


def test_both_kinds_dispute_on_either_rule():
    agree = [{"overall": 1, "score_a": 2, "score_b": 4}, {"overall": 1, "score_a": 2, "score_b": 4}]
    assert not disputed(agree, BOTH, "both").disputed
    scores_apart = [{"overall": 1, "score_a": 1, "score_b": 5}, {"overall": 1, "score_a": 5, "score_b": 1}]
    assert disputed(scores_apart, BOTH, "both").reason == "distance"
    sides_apart = [{"overall": 1, "score_a": 2, "score_b": 4}, {"overall": -1, "score_a": 2, "score_b": 4}]
    assert disputed(sides_apart, BOTH, "both").reason == "split"


def test_no_labels_or_one_label_is_not_disputed():
    assert not disputed([]).disputed
    assert not disputed([{"overall": 1}]).disputed
    assert not disputed([{"helpfulness": 2}], RUBRIC, "rubric").disputed


def test_the_threshold_must_be_a_share():
    with pytest.raises(ValueError, match="between 0 and 1"):
        disputed([{"overall": 1}], threshold=1.5)


def test_the_judges_verdict_differs_on_the_side():
    humans = [{"overall": -1}, {"overall": -2}, {"overall": 1}]
    assert verdict_differs(humans, {"overall": 1}, schema=PAIRWISE, kind="pairwise", threshold=0.6)
    assert not verdict_differs(humans, {"overall": -2}, schema=PAIRWISE, kind="pairwise", threshold=0.6)
    assert not verdict_differs(humans, None, schema=PAIRWISE, kind="pairwise", threshold=0.6)
    assert not verdict_differs(humans, {"helpfulness": 1}, schema=PAIRWISE, kind="pairwise", threshold=0.6)
    split = [{"overall": -1}, {"overall": 1}]  # a split is the labels' own dispute
    assert not verdict_differs(split, {"overall": 1}, schema=PAIRWISE, kind="pairwise", threshold=0.6)


def test_a_rubric_verdict_differs_by_more_than_the_humans_may():
    humans = [{"helpfulness": 3}, {"helpfulness": 3}]
    assert not verdict_differs(humans, {"helpfulness": 4}, schema=RUBRIC, kind="rubric", threshold=0.6)
    assert verdict_differs(humans, {"helpfulness": 0}, schema=RUBRIC, kind="rubric", threshold=0.6)


# --- laws ----------------------------------------------------------------------------------------


def _label_strategy(schema: dict, kind: str):
    keys = label_schema.label_keys(schema, kind)
    return st.fixed_dictionaries({k.name: st.integers(k.low, k.high) for k in keys})


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(KINDS)), n=st.integers(1, 8), threshold=st.floats(0, 1))
def test_identical_labels_never_disagree(data, kind, n, threshold):
    schema = KINDS[kind]
    label = data.draw(_label_strategy(schema, kind))
    result = label_consensus([label] * n, schema=schema, kind=kind, threshold=threshold)
    assert not result.disputed
    assert result.agreement == 1.0


def _consensus_label(labels, schema, kind):
    """A label on the consensus: the primary key's majority side (pairwise), every rubric score at a median
    (the lower middle value, an actual median of integers) — or None when no such label exists."""
    keys = label_schema.label_keys(schema, kind)
    primary = primary_key(schema=schema, kind=kind)
    out = {}
    for key in keys:
        values = [label[key.name] for label in labels]
        if key.pairwise:
            out[key.name] = values[0]
            continue
        out[key.name] = statistics.median_low(values)
    result = label_consensus(labels, schema=schema, kind=kind, threshold=0)
    if primary.pairwise:
        side = result.majority
        if side is None:
            return None
        out[primary.name] = side * max(1, primary.high) if side else 0
        if side == 0 and not any(k.allow_tie for k in keys if k.name == primary.name):
            return None
    else:
        values = sorted(label[primary.name] for label in labels)
        if result.majority is None or result.majority not in (values[(len(values) - 1) // 2], values[len(values) // 2]):
            return None  # the mode is not a median: adding it could spread the scores
        out[primary.name] = result.majority
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(KINDS)), threshold=st.floats(0, 1))
def test_more_agreement_never_flips_agree_to_disagree(data, kind, threshold):
    schema = KINDS[kind]
    labels = data.draw(st.lists(_label_strategy(schema, kind), min_size=1, max_size=7))
    before = label_consensus(labels, schema=schema, kind=kind, threshold=threshold)
    assume(not before.disputed)
    extra = _consensus_label(labels, schema, kind)
    assume(extra is not None)
    after = label_consensus([*labels, extra], schema=schema, kind=kind, threshold=threshold)
    assert not after.disputed, (labels, extra, before, after)
    assert after.agreement >= before.agreement - 1e-12
