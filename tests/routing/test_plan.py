"""The pure routing plan and its rules: the calibration slice, hysteresis, unusable verdicts first, waiting
items, the gold gate, per-item features and reasons, and the judge signals of every campaign kind."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotate.models import RoutingDecision
from routing import evidence, judge_signals, learned, plan, policies
from routing.plan import Evidence, PlanItem, Rules, partition, route_plan
from routing.router import route_campaign

from .test_router import judged_campaign

AGREE = {"label": {"overall": 1}, "flipped": False, "disagree": False, "parse_failure": False, "tie": False,
         "confidence": None}  # fmt: skip
FLIP = {**AGREE, "label": {"overall": 0}, "flipped": True, "tie": True}
BROKEN = {**AGREE, "label": None, "parse_failure": True}


def _plan(items, policy="judge_uncertainty", target=3, signals=None, **kw):
    rules = Rules(policy=policy, target=target, seed=7, **kw)
    return route_plan(partition(items, rules), rules, Evidence(signals=signals))


def test_the_calibration_slice_is_topped_up_at_random_the_same_way_every_pass():
    items = [PlanItem(k) for k in range(100)]
    rules = Rules(policy="random", target=20, seed=7, calibration_target=5)
    first = partition(items, rules)
    assert [i.key for i in first.in_slice] == [i.key for i in partition(items, rules).in_slice]
    expected = np.argsort([policies.stable_draw(-7, k) for k in range(100)])
    assert sorted(i.key for i in first.in_slice) == sorted(expected[:5].tolist())
    # A slice already there is kept; an overridden item is never drawn; a bigger target adds the next draws.
    sliced = {i.key for i in first.in_slice}
    again = [PlanItem(k, in_slice=k in sliced, overridden=k == expected[5]) for k in range(100)]
    grown = partition(again, Rules(policy="random", target=20, seed=7, calibration_target=7))
    assert sliced < {i.key for i in grown.in_slice} and expected[5] not in {i.key for i in grown.in_slice}
    decisions = route_plan(first, rules).decisions
    assert all(decisions[k].destination == "both" and decisions[k].features is None for k in sliced)


def test_an_incumbent_keeps_its_place_unless_beaten_by_the_margin():
    signals = {0: {**AGREE, "confidence": 0.9}, 1: {**AGREE, "confidence": 0.85}, 2: {**AGREE, "confidence": 0.5}}
    # Item 0 is with humans (unlabelled); item 1 is 0.025 more uncertain: less than the margin of 0.05.
    items = [PlanItem(0, route="human"), PlanItem(1, route="llm"), PlanItem(2, route="llm")]
    assert _plan(items, target=2, signals=signals).humans == {0, 2}
    signals[1] = {**AGREE, "confidence": 0.7}  # 0.1 more uncertain: it takes the place
    assert _plan(items, target=2, signals=signals).humans == {1, 2}


def test_unusable_verdicts_go_first_past_the_budget_and_waiting_humans_spend_it():
    items = [PlanItem(k) for k in range(6)] + [PlanItem(6, route="human")]
    signals = {0: BROKEN, 1: BROKEN, 2: FLIP, 3: AGREE, 4: AGREE, 5: FLIP}  # 6 has no verdict yet: it waits
    result = _plan(items, target=3, signals=signals)
    assert result.waiting == [6] and 6 not in result.decisions
    assert result.unusable == [0, 1] and result.over_budget == 0
    assert result.humans == {0, 1}  # the waiting item with humans took the third place
    assert "no usable verdict" in result.decisions[0].reason
    tight = _plan(items, target=1, signals=signals)
    assert tight.humans == {0, 1} and tight.over_budget == 2  # the waiting item spent the only place


def test_the_gold_gate_sends_whatever_would_stay_with_the_judges_alone_to_humans():
    items = [PlanItem(0, route="llm", overridden=True), PlanItem(1, route="llm"), PlanItem(2), PlanItem(3)]
    result = _plan(items, target=1, signals={2: FLIP, 3: AGREE}, gate="judge x scored 50%")
    policies_by_item = {k: d.policy for k, d in result.decisions.items()}
    assert policies_by_item == {0: "gold_gate", 1: "gold_gate", 2: "judge_uncertainty", 3: "gold_gate"}
    assert result.gated == 3 and result.over_budget == 3
    assert "judge x scored 50%" in result.decisions[0].reason


def test_judge_uncertainty_decisions_record_the_signals_that_fired_and_name_them():
    signals = {0: {**FLIP, "confidence": 0.6}, 1: AGREE}
    decisions = _plan([PlanItem(0), PlanItem(1)], target=1, signals=signals).decisions
    assert decisions[0].features == [
        {"signal": "flipped", "weight": 8.0}, {"signal": "tie", "weight": 1.0},
        {"signal": "low_confidence", "value": 0.6, "weight": pytest.approx(0.2)},
    ]  # fmt: skip
    assert decisions[0].score == pytest.approx(9.2)
    assert "pushed by flipped +8.00, tie +1.00, low_confidence +0.20" in decisions[0].reason
    assert decisions[1].features == [] and "pushed by" not in decisions[1].reason
    static = _plan([PlanItem(0)], policy="all_llm", target=0).decisions[0]
    assert static.features is None and static.score is None and static.reason.startswith("campaign policy all_llm")


def test_learned_decisions_record_their_top_contributions():
    features = {0: [{"feature": "judge_uncertainty", "value": 9.0, "contribution": 1.2}], 1: []}
    rules = Rules(policy="learned", target=1, seed=1)
    ev = Evidence(signals={0: FLIP, 1: AGREE}, scores={0: 0.9, 1: 0.1}, features=features)
    decisions = route_plan(partition([PlanItem(0), PlanItem(1)], rules), rules, ev).decisions
    assert decisions[0].features == features[0] and decisions[0].destination == "human"
    assert "P(judges differ from human consensus) = 0.90" in decisions[0].reason
    assert "pushed by judge_uncertainty +1.20" in decisions[0].reason


def test_random_takes_the_highest_draws():
    items = [PlanItem(k) for k in range(50)]
    humans = _plan(items, policy="random", target=10).humans
    draws = {k: policies.stable_draw(7, k) for k in range(50)}
    assert humans == set(sorted(draws, key=draws.get, reverse=True)[:10])
    assert all(d.features is None for d in _plan(items, policy="random", target=10).decisions.values())


@given(
    flags=st.fixed_dictionaries({k: st.booleans() for k in policies.UNCERTAINTY_WEIGHTS}),
    confidence=st.one_of(st.none(), st.floats(-1, 2)),
)
def test_the_signals_that_fired_add_up_to_the_uncertainty_score(flags, confidence):
    signals = {**flags, "confidence": confidence}
    fired = policies.uncertainty_signals(signals)
    assert sum(f["weight"] for f in fired) == pytest.approx(policies.uncertainty_score(signals))
    assert all(f["weight"] > 0 for f in fired)


def test_the_top_features_of_every_item_are_its_top_contributions():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(200, 6)), (rng.random(200) < 0.3).astype(int)
    result = learned.learned(X, y, rng.normal(size=(40, 6)))
    keys = [100 + row for row in range(40)]
    top = evidence.TopFeatures(result, keys)
    assert [top[key] for key in keys] == [result.top_contributions(row, k=3) for row in range(40)]
    assert len(top) == 40 and list(top) == keys


def test_rubric_scores_of_both_kinds_disagree_and_agree_within_a_point():
    schema = {"pairwise": {"aspects": [{"name": "overall", "scale": 1}]}, "rubric": {"criteria": [{"name": "h"}]}}
    entries = [{"judge": "a", "label": {"overall": 1, "h_a": 2, "h_b": 4}, "label_swapped": {"overall": 1, "h_a": 2,
                "h_b": 4}}, {"judge": "b", "label": {"overall": 1, "h_a": 2, "h_b": 2}}]  # fmt: skip
    signals = judge_signals.signals_for("both", schema, entries)
    assert signals["disagree"] and not signals["flipped"] and signals["label"]["overall"] == 1
    assert set(signals["label"]) == {"overall", "h_a", "h_b"}
    humans = [{"label": {"overall": 1, "h_a": 2, "h_b": 3}}, {"label": {"overall": 2, "h_a": 3, "h_b": 3}}]
    close = {"overall": 1, "h_a": 2, "h_b": 3}
    assert judge_signals.judge_agrees("both", schema, close, humans) is True
    assert judge_signals.judge_agrees("both", schema, {**close, "h_b": 1}, humans) is False  # a rubric point off
    assert judge_signals.judge_agrees("both", schema, {**close, "overall": -1}, humans) is False  # the other side
    assert judge_signals.judge_agrees("both", schema, None, humans) is False
    assert (
        judge_signals.judge_agrees("both", schema, close, [{"label": {"overall": 1}}, {"label": {"overall": -1}}])
        is None
    )


@pytest.mark.django_db(transaction=True)
def test_the_pass_writes_each_decisions_features():
    campaign, _, items = judged_campaign(n=40, flipped={1, 2, 3})
    route_campaign(campaign=campaign)
    # A flipped item outside the calibration slice (which is drawn by the campaign's id: any may be in it).
    decisions = [RoutingDecision.objects.filter(item=items[k]).first() for k in (1, 2, 3)]
    flipped = next(d for d in decisions if d.policy != plan.CALIBRATION)
    assert flipped.features == [{"signal": "flipped", "weight": 8.0}, {"signal": "tie", "weight": 1.0}]
    assert "pushed by flipped +8.00, tie +1.00" in flipped.reason
    assert all(d.features is None for d in RoutingDecision.objects.filter(campaign=campaign, policy="calibration"))
    plain = RoutingDecision.objects.filter(campaign=campaign, policy="judge_uncertainty", score=0.0)
    assert plain.exists() and all(d.features == [] for d in plain)
