"""Judge verdicts: mapping back from the order shown, order consistency, logprob confidence, aggregation."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.schema import PRESET_KINDS, PRESETS, label_keys, label_validate, preset, schema_validate
from routing.judges.templates import BUILTIN_TEMPLATES
from routing.judges.verdicts import aggregate_judgments, consistency, logprob_confidence, verdict_to_item

PAIRWISE_PRESETS = sorted(name for name in PRESETS if PRESET_KINDS[name] == "pairwise")
SIMPLE = schema_validate(preset("simple-pairwise"), "pairwise")
MULTIPREF = schema_validate(preset("multipref"), "pairwise")
NO_TIE = schema_validate({"pairwise": {"aspects": [{"name": "overall", "scale": 2, "allow_tie": False}]}}, "pairwise")
BOTH = schema_validate(
    {
        "pairwise": {"aspects": [{"name": "overall", "scale": 2}]},
        "rubric": {"criteria": [{"name": "quality", "min": 1, "max": 5}]},
    },
    "both",
)
ARENA_2 = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]


@st.composite
def schema_and_label(draw):
    name = draw(st.sampled_from(PAIRWISE_PRESETS))
    schema = schema_validate(preset(name), "pairwise")
    keys = label_keys(schema, "pairwise")
    label = {
        k.name: draw(st.sampled_from([v for v in range(k.low, k.high + 1) if v != 0 or k.allow_tie])) for k in keys
    }
    return schema, label


# Back to the item's order


def test_a_swapped_verdict_changes_sign():
    assert verdict_to_item({"overall": -2, "helpfulness": 1}, True) == {"overall": 2, "helpfulness": -1}
    assert verdict_to_item({"overall": -2}, False) == {"overall": -2}
    assert verdict_to_item({"overall": 0}, True) == {"overall": 0}


def test_with_a_schema_of_both_kinds_per_response_keys_trade_places():
    shown = {"overall": -1, "quality_a": 5, "quality_b": 2}
    assert verdict_to_item(shown, True, campaign_schema=BOTH, kind="both") == {
        "overall": 1,
        "quality_b": 5,
        "quality_a": 2,
    }


@given(case=schema_and_label(), swapped=st.booleans())
def test_mapping_back_is_an_involution(case, swapped):
    schema, label = case
    once = verdict_to_item(label, swapped, campaign_schema=schema)
    assert verdict_to_item(once, swapped, campaign_schema=schema) == label
    assert verdict_to_item(verdict_to_item(label, swapped), swapped) == label
    assert once == verdict_to_item(label, swapped)  # a pairwise schema flips every key, as the schemaless form does
    label_validate(schema=schema, kind="pairwise", label=once, source="judge")


@settings(deadline=None)
@given(case=schema_and_label(), swapped=st.booleans(), structured=st.booleans())
def test_a_judge_answering_on_the_swapped_order_maps_back_to_the_items_label(case, swapped, structured):
    """The judge sees B first when swapped; what it writes, parsed and mapped back, is the item's label."""
    schema, item_label = case
    template = BUILTIN_TEMPLATES["pairwise-arena"]
    shown = verdict_to_item(item_label, swapped, campaign_schema=schema)
    answer = template.format_answer(shown, campaign_schema=schema, structured=structured)
    parsed = template.parse(answer, campaign_schema=schema)
    assert verdict_to_item(parsed.label, swapped, campaign_schema=schema) == item_label


# Consistency between the two orders


def test_equal_labels_are_consistent():
    result = consistency({"overall": -1}, {"overall": -1})
    assert result.consistent and result.aggregate == {"overall": -1} and not result.differing


def test_a_flip_is_inconsistent_and_aggregates_to_a_tie_where_ties_are_allowed():
    result = consistency({"overall": -2}, {"overall": 1}, campaign_schema=MULTIPREF)
    assert not result.consistent and result.flipped == ("overall",)
    assert result.aggregate == {"overall": 0}


def test_a_flip_without_ties_leaves_the_item_undecided():
    result = consistency({"overall": -1}, {"overall": 2}, campaign_schema=NO_TIE)
    assert result.aggregate is None and result.undecided == ("overall",)


@pytest.mark.parametrize(
    ("first", "second", "aggregate"),
    [(-2, -1, -1), (2, 1, 1), (-3, -1, -2), (0, -1, 0), (0, 2, 1), (-1, -1, -1)],
)
def test_same_side_differences_take_the_mean_rounded_toward_zero(first, second, aggregate):
    result = consistency({"overall": first}, {"overall": second})
    assert result.aggregate == {"overall": aggregate}
    assert result.consistent == (first == second) and not result.flipped


def test_rubric_keys_of_a_campaign_of_both_kinds_take_the_mean_rounded_down():
    result = consistency(
        {"overall": 1, "quality_a": 4, "quality_b": 2},
        {"overall": 1, "quality_a": 3, "quality_b": 2},
        campaign_schema=BOTH,
    )
    assert result.aggregate == {"overall": 1, "quality_a": 3, "quality_b": 2}
    assert result.differing == ("quality_a",) and not result.flipped


def test_labels_over_different_keys_cannot_be_compared():
    with pytest.raises(ValueError, match="different keys"):
        consistency({"overall": 1}, {"overall": 1, "helpfulness": 1})


@given(first=schema_and_label(), data=st.data())
def test_consistency_is_symmetric_and_its_aggregate_is_a_valid_label(first, data):
    schema, original = first
    swapped = {
        k.name: data.draw(st.sampled_from([v for v in range(k.low, k.high + 1) if v != 0 or k.allow_tie]))
        for k in label_keys(schema, "pairwise")
    }
    forward = consistency(original, swapped, campaign_schema=schema)
    backward = consistency(swapped, original, campaign_schema=schema)
    assert forward == backward
    assert consistency(original, original, campaign_schema=schema).consistent
    if forward.aggregate is not None:
        label_validate(schema=schema, kind="pairwise", label=forward.aggregate, source="judge")
        for key, value in forward.aggregate.items():  # never stronger than the weaker of the two
            assert abs(value) <= max(abs(original[key]), abs(swapped[key]))


# Confidence from logprobs


def entry(token, probability, alternatives=(), *, raw=None):
    """One logprobs.content entry; `raw` gives the token's bytes when it is part of a UTF-8 character."""
    data = raw if raw is not None else token.encode("utf-8")
    top = [{"token": token, "logprob": math.log(probability), "bytes": list(data)}]
    top += [{"token": t, "logprob": math.log(p), "bytes": list(t.encode("utf-8"))} for t, p in alternatives]
    return {"token": token, "logprob": math.log(probability), "bytes": list(data), "top_logprobs": top}


def test_a_single_token_score_renormalises_over_the_allowed_scores():
    logprobs = [
        entry("Feedback", 0.99),
        entry(": fine", 0.99),
        entry(" [RESULT]", 0.99),
        entry(" 4", 0.6, [(" 3", 0.25), (" 5", 0.05), (" x", 0.1)]),
    ]
    confidence = logprob_confidence(logprobs, ["1", "2", "3", "4", "5"])
    assert confidence == pytest.approx(0.6 / (0.6 + 0.25 + 0.05))
    assert logprob_confidence(logprobs, ["3", "4"]) == pytest.approx(0.6 / 0.85)


def test_a_multi_token_verdict_multiplies_its_tokens_and_counts_departures():
    logprobs = [
        entry("Verdict:", 0.99),
        entry(" [[", 0.99),
        entry("A", 0.8, [("B", 0.2)]),
        entry(">", 0.9, [(">>", 0.1)]),
        entry("B", 1.0),
        entry("]]", 1.0),
    ]
    # A>B = 0.8 * 0.9; B... = 0.2 (whatever would follow); A>>B = 0.8 * 0.1.
    assert logprob_confidence(logprobs, ARENA_2) == pytest.approx(0.72 / (0.72 + 0.2 + 0.08))
    # On a scale of 1, ">>" leads nowhere allowed.
    assert logprob_confidence(logprobs, ["A>B", "A=B", "B>A"]) == pytest.approx(0.72 / 0.92)
    # The alternative "B" counts once, however many verdicts it could become.
    assert logprob_confidence(logprobs, ["A>B", "B>A"]) == pytest.approx(
        logprob_confidence(logprobs, ["A>B", "B>A", "B>>A"])
    )


def test_a_verdict_inside_merged_tokens_is_found():
    logprobs = [entry("Final: [[A", 0.7, [("Final: [[B", 0.3)]), entry(">B]]", 0.5, [(">>B]]", 0.5)])]
    assert logprob_confidence(logprobs, ARENA_2) == pytest.approx(0.35 / (0.35 + 0.3 + 0.35))


def test_no_alternatives_means_certainty_and_a_missing_verdict_means_none():
    logprobs = [entry("[[", 1.0), entry("B", 0.5), entry(">", 0.5), entry("A", 0.5), entry("]]", 1.0)]
    assert logprob_confidence(logprobs, ARENA_2) == 1.0
    assert logprob_confidence(logprobs, ["1", "2"]) is None
    assert logprob_confidence([], ARENA_2) is None
    assert logprob_confidence(logprobs, []) is None


def test_at_picks_the_verdict_of_one_aspect():
    text_tokens = [
        entry("overall: [[", 1.0),
        entry("A", 0.9, [("B", 0.1)]),
        entry(">", 1.0),
        entry("B", 1.0),
        entry("]]\nhelpfulness: [[", 1.0),
        entry("B", 0.6, [("A", 0.4)]),
        entry(">", 1.0),
        entry("A", 1.0),
        entry("]]", 1.0),
    ]
    text = "".join(e["token"] for e in text_tokens)
    two_aspects = schema_validate(
        {"pairwise": {"aspects": [{"name": "overall", "scale": 2}, {"name": "helpfulness", "scale": 2}]}}, "pairwise"
    )
    result = BUILTIN_TEMPLATES["pairwise-arena"].parse(text, campaign_schema=two_aspects)
    assert result.label == {"overall": -1, "helpfulness": 1}
    assert result.spans["overall"][0] == text.index("A>B")
    assert logprob_confidence(text_tokens, ARENA_2, at=result.spans["overall"][0]) == pytest.approx(0.9)
    assert logprob_confidence(text_tokens, ARENA_2, at=result.spans["helpfulness"][0]) == pytest.approx(0.6)
    assert logprob_confidence(text_tokens, ARENA_2) == pytest.approx(0.6)  # the last verdict by default
    assert logprob_confidence(text_tokens, ARENA_2, at=0) is None


def test_offsets_count_characters_even_when_a_token_splits_a_character():
    logprobs = [
        entry("caf", 1.0),
        entry("\\xc3", 1.0, raw=b"\xc3"),
        entry("\\xa9", 1.0, raw=b"\xa9"),
        entry(" [[", 1.0),
        entry("B", 0.75, [("A", 0.25)]),
        entry(">", 1.0),
        entry("A", 1.0),
        entry("]]", 1.0),
    ]
    text = "caf\u00e9 [[B>A]]"
    assert logprob_confidence(logprobs, ["A>B", "B>A"], at=text.index("B>A")) == pytest.approx(0.75)


@settings(deadline=None)
@given(
    probabilities=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    alternatives=st.lists(st.floats(0.0, 0.99), min_size=3, max_size=3),
)
def test_confidence_is_a_probability(probabilities, alternatives):
    swaps = {"A": "B", ">": ">>", "B": "A"}
    logprobs = [entry("[[", 1.0)]
    for token, p, q in zip(["A", ">", "B"], probabilities, alternatives, strict=True):
        alt = [(swaps[token], min(q, 1.0 - p))] if min(q, 1.0 - p) > 0 else []
        logprobs.append(entry(token, p, alt))
    logprobs.append(entry("]]", 1.0))
    confidence = logprob_confidence(logprobs, ARENA_2)
    assert 0.0 < confidence <= 1.0


# Several samples or judges


def test_a_unanimous_panel_is_certain():
    result = aggregate_judgments([({"overall": -1}, 0.9), ({"overall": -1}, None), ({"overall": -1}, 0.6)])
    assert result.label == {"overall": -1} and result.confidence == 1.0 and result.used == 3


def test_the_majority_wins_with_its_share_as_confidence():
    result = aggregate_judgments([({"overall": -1}, None), ({"overall": -1}, None), ({"overall": 2}, None)])
    assert result.label == {"overall": -1}
    assert result.confidence == pytest.approx(2 / 3)
    assert result.mean == {"overall": pytest.approx(0.0)}


def test_confidence_weighs_votes_and_failures_are_left_out():
    result = aggregate_judgments([({"overall": -1}, 0.2), ({"overall": 1}, 0.9), (None, None), (None, 0.5)])
    assert result.label == {"overall": 1}
    assert result.agreement == {"overall": pytest.approx(0.9 / 1.1)}
    assert (result.used, result.failed) == (2, 2)


def test_the_lowest_aspect_agreement_is_the_labels_confidence():
    result = aggregate_judgments(
        [({"overall": -1, "helpfulness": 2}, None), ({"overall": -1, "helpfulness": 1}, None)]
        + [({"overall": -1, "helpfulness": 1}, None), ({"overall": -2, "helpfulness": 1}, None)]
    )
    assert result.label == {"overall": -1, "helpfulness": 1}
    assert result.agreement == {"overall": 0.75, "helpfulness": 0.75} and result.confidence == 0.75


def test_an_even_split_is_undecided_by_majority_and_a_tie_by_mean():
    votes = [({"overall": -1}, None), ({"overall": 1}, None)]
    majority = aggregate_judgments(votes)
    assert majority.label is None and majority.undecided == ("overall",)
    mean = aggregate_judgments(votes, method="mean", campaign_schema=SIMPLE)
    assert mean.label == {"overall": 0} and mean.confidence == 0.0
    assert aggregate_judgments(votes, method="mean", campaign_schema=NO_TIE).undecided == ("overall",)


def test_equal_weights_go_to_the_value_nearest_the_mean():
    votes = [({"overall": -2}, None), ({"overall": -2}, None), ({"overall": 1}, None), ({"overall": 1}, None)]
    votes.append(({"overall": -1}, None))
    assert aggregate_judgments(votes).label == {"overall": -2}


@pytest.mark.parametrize(
    ("values", "schema", "expected"),
    [
        ([-2, -1], None, -1),  # -1.5: halves toward zero
        ([2, 1], None, 1),
        ([-2, -2, 1], None, -1),
        ([1, -2], NO_TIE, -1),  # rounds to a tie the aspect forbids: the side the mean leans to
        ([2, 1], NO_TIE, 1),
    ],
)
def test_the_mean_method_rounds_halves_toward_zero(values, schema, expected):
    result = aggregate_judgments([({"overall": v}, None) for v in values], method="mean", campaign_schema=schema)
    assert result.label == {"overall": expected}


def test_rubric_means_round_halves_down():
    schema = schema_validate(preset("prometheus"), "rubric")
    result = aggregate_judgments([({"score": 3}, None), ({"score": 4}, None)], method="mean", campaign_schema=schema)
    assert result.label == {"score": 3}
    assert aggregate_judgments(
        [({"score": 3}, None), ({"score": 4}, 3.0)], method="mean", campaign_schema=schema
    ).label == {"score": 4}


def test_mixed_takes_the_majority_of_comparisons_and_the_mean_of_scores():
    rows = [(-1, 2), (-1, 5), (-1, 5), (2, 2)]  # (overall, quality_a); every judgment gives quality_b 2
    votes = [({"overall": o, "quality_a": q, "quality_b": 2}, None) for o, q in rows]
    mixed = aggregate_judgments(votes, method="mixed", campaign_schema=BOTH)
    assert mixed.label == {"overall": -1, "quality_a": 3, "quality_b": 2}
    assert mixed.agreement == pytest.approx({"overall": 0.75, "quality_a": 0.0, "quality_b": 1.0})
    # By majority alone the scores 2, 5, 5, 2 leave quality_a undecided; by mean alone overall is a tie.
    assert aggregate_judgments(votes, method="majority", campaign_schema=BOTH).undecided == ("quality_a",)
    assert aggregate_judgments(votes, method="mean", campaign_schema=BOTH).label["overall"] == 0


def test_nothing_parsed_gives_no_label_and_bad_input_is_refused():
    assert aggregate_judgments([(None, None)]).label is None
    assert aggregate_judgments([]).used == 0
    with pytest.raises(ValueError, match="different keys"):
        aggregate_judgments([({"overall": 1}, None), ({"helpfulness": 1}, None)])
    with pytest.raises(ValueError, match="method"):
        aggregate_judgments([({"overall": 1}, None)], method="median")


@given(
    votes=st.lists(st.tuples(st.integers(-2, 2), st.one_of(st.none(), st.floats(0.0, 1.0))), min_size=1, max_size=8),
    method=st.sampled_from(["majority", "mean"]),
    seed=st.integers(0, 1000),
)
def test_aggregation_ignores_order_and_stays_in_range(votes, method, seed):
    judgments = [({"overall": v}, c) for v, c in votes]
    shuffled = judgments[:]
    random.Random(seed).shuffle(shuffled)
    first = aggregate_judgments(judgments, method=method, campaign_schema=MULTIPREF)
    second = aggregate_judgments(shuffled, method=method, campaign_schema=MULTIPREF)
    assert first.label == second.label and first.agreement == pytest.approx(second.agreement)
    if first.label is not None:
        assert -2 <= first.label["overall"] <= 2 and 0.0 <= first.confidence <= 1.0
    if len({v for v, _ in votes}) == 1:
        assert first.label == {"overall": votes[0][0]} and first.confidence == pytest.approx(1.0)
