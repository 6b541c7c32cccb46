"""A routing pass's decisions as a pure function: items, judge signals, scores, the budget and a seed in;
each item's destination with its score, reason and the features that pushed it out.

The live pass (`routing.router`), `routing_eval` and the forecast (`routing.evaluation`) all route through
`route_plan`, and every rule it applies is in `routing.policies`. In order:

1. `partition`: what must not move — an admin's override, the calibration slice, every item on the human
   side that humans have labelled or hold a lease on — and the slice topped up to its target at random
   (`policies.calibration_slice`) among the items the policy may still move;
2. judge-first policies route an item only once the judges have a verdict on it (the others wait where
   they are, those with humans spending budget);
3. an item no judge could label goes to humans first, past the budget if need be (`policies.spend`);
4. the rest of the budget goes to the best-ranked candidates (`policies.ranking`: the policy's score, an
   incumbent's `INCUMBENT_MARGIN`, ties in `stable_draw` order), everything else to the judges;
5. the gold gate: while it is closed, nothing stays with the judges alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from routing import policies
from routing.policies import ALL_HUMAN, ALL_LLM, BOTH, HUMAN, JUDGE_POLICIES, LEARNED, LLM, RANDOM

CALIBRATION = "calibration"
GOLD_GATE = "gold_gate"
HUMAN_SIDE = (HUMAN, BOTH)
SIGNAL_WORDS = {
    "flipped": "the verdict flips when the order is swapped",
    "disagree": "the judges disagree",
    "parse_failure": "a judge's answer did not parse",
    "tie": "the judges call it a tie",
}
STATIC_REASONS = {
    ALL_HUMAN: "campaign policy all_human: every item goes to humans",
    ALL_LLM: "campaign policy all_llm: every item goes to the judges",
}


@dataclass(frozen=True)
class PlanItem:
    """One routable item as the plan sees it: its key (the item's id), where it is now, whether humans have
    labelled or leased it, whether an admin's override is its latest decision, whether it is in the slice."""

    key: int
    route: str = "unrouted"
    labelled_or_leased: bool = False
    overridden: bool = False
    in_slice: bool = False


@dataclass(frozen=True)
class Rules:
    """The pass's settings: the policy, how many items may be on the human side (the slice included), the
    calibration slice's target size, the seed of every draw, and the gold gate's reason while it is closed."""

    policy: str
    target: int
    seed: int
    calibration_target: int = 0
    calibration_fraction: float = 0.0
    gate: str = ""


@dataclass(frozen=True)
class Evidence:
    """What the policy ranks by. `signals`: judge-first policies' judge signals per item (an item without
    them waits); `scores`: the learned policy's probabilities, with `features` (the item's top signed
    contributions) — None while it is not trained (`fallback` says why), and judge uncertainty ranks;
    `unusable`: for the other policies, the items no judge could label."""

    signals: Mapping[int, dict] | None = None
    scores: Mapping[int, float] | None = None
    features: Mapping[int, list[dict]] | None = None
    unusable: Collection[int] = ()
    fallback: str = ""


@dataclass(slots=True)  # one per candidate: a frozen dataclass's __init__ costs a second per 100,000
class Decision:
    """Where an item goes and why. `why` is the reason, or what makes it when asked (`reason`): a pass writes
    only the decisions that move an item, and the words of the others are never needed."""

    destination: str
    policy: str
    why: str | Callable[[], str]
    score: float | None = None
    pushed: list[dict] | Callable[[], list[dict]] | None = None

    @property
    def reason(self) -> str:
        return self.why if isinstance(self.why, str) else self.why()

    @property
    def features(self) -> list[dict] | None:
        """What pushed the decision (made when asked, like the reason)."""
        return self.pushed() if callable(self.pushed) else self.pushed


@dataclass
class Partition:
    items: Sequence[PlanItem]
    in_slice: list[PlanItem]
    kept: list[PlanItem]
    overridden: list[PlanItem]
    candidates: list[PlanItem]


@dataclass
class Plan:
    decisions: dict[int, Decision]
    partition: Partition
    waiting: list[int] = field(default_factory=list)
    unusable: list[int] = field(default_factory=list)
    over_budget: int = 0
    gated: int = 0

    @property
    def humans(self) -> set[int]:
        """The items the plan puts on the human side (decided here; kept and waiting items not included)."""
        return {key for key, d in self.decisions.items() if d.destination in HUMAN_SIDE}


def partition(items: Sequence[PlanItem], rules: Rules) -> Partition:
    """What must not move, the calibration slice topped up, and the candidates the policy routes."""
    overridden = [i for i in items if i.overridden]
    in_slice = [i for i in items if i.in_slice and not i.overridden]
    movable = [i for i in items if not i.overridden and not i.in_slice]
    need = rules.calibration_target - len(in_slice)
    if need > 0 and movable:
        chosen = policies.calibration_slice([i.key for i in movable], need, seed=rules.seed)
        taken = set(chosen.tolist())
        in_slice += [movable[k] for k in chosen]
        movable = [item for k, item in enumerate(movable) if k not in taken]
    kept = [i for i in movable if i.route in HUMAN_SIDE and i.labelled_or_leased]
    candidates = [i for i in movable if not (i.route in HUMAN_SIDE and i.labelled_or_leased)]
    return Partition(items, in_slice, kept, overridden, candidates)


def route_plan(part: Partition, rules: Rules, evidence: Evidence = Evidence()) -> Plan:
    """The pass's decisions over a `partition` (see the module's docstring)."""
    decisions = {i.key: _slice_decision(rules) for i in part.in_slice}
    plan = Plan(decisions, part)
    used = len(part.in_slice) + len(part.kept) + sum(1 for i in part.overridden if i.route in HUMAN_SIDE)
    room = max(0, rules.target - used)
    candidates = part.candidates
    judge_first = rules.policy in JUDGE_POLICIES
    signals = evidence.signals or {}
    if judge_first:
        waiting = [i for i in candidates if i.key not in signals]
        plan.waiting = [i.key for i in waiting]
        room = max(0, room - sum(1 for i in waiting if i.route in HUMAN_SIDE))  # they keep their place
        candidates = [i for i in candidates if i.key in signals]
        unusable = {i.key for i in candidates if signals[i.key]["label"] is None}
    else:
        unusable = set(evidence.unusable) & {i.key for i in candidates}
    plan.unusable = [i.key for i in candidates if i.key in unusable]
    for key in plan.unusable:
        decisions[key] = _unusable_decision(rules.policy, signals.get(key))
    room, plan.over_budget = policies.spend(room, len(unusable))
    _rank(plan, [i for i in candidates if i.key not in unusable], room, rules, evidence)
    if rules.gate:
        plan.gated = _gate(plan, part.items, rules.gate)
        plan.over_budget += plan.gated
    return plan


def _scores(policy: str, keys: list[int], draws: np.ndarray, evidence: Evidence) -> tuple[np.ndarray, list | None]:
    """The policy's score per candidate, and for judge uncertainty the signals that make it (its features)."""
    if policy == RANDOM:
        return draws, None
    if policy == LEARNED and evidence.scores is not None:
        return np.fromiter((evidence.scores[k] for k in keys), dtype=float, count=len(keys)), None
    if policy in JUDGE_POLICIES:
        signals = evidence.signals or {}
        fired = [policies.uncertainty_signals(signals[k]) for k in keys]
        return np.fromiter((sum(f["weight"] for f in fs) for fs in fired), dtype=float, count=len(keys)), fired
    return np.zeros(len(keys)), None


def _rank(plan: Plan, candidates: list[PlanItem], room: int, rules: Rules, evidence: Evidence) -> None:
    """The budget left (`room`) to the best-ranked candidates, the rest to the judges, each with its reason."""
    keys = [i.key for i in candidates]
    draws = policies.stable_draws(rules.seed, keys)
    scores, fired = _scores(rules.policy, keys, draws, evidence)
    incumbent = np.fromiter((i.route in HUMAN_SIDE for i in candidates), dtype=bool, count=len(candidates))
    order = policies.ranking(policies.with_margin(scores, incumbent, rules.policy), draws)
    cut = float(scores[order[room - 1]]) if 0 < room <= len(order) else None
    budgeted = rules.policy in policies.BUDGETED_POLICIES
    learned = rules.policy == LEARNED and evidence.scores is not None
    why = _Why(rules, len(order), cut, evidence.fallback if rules.policy == LEARNED else "")
    signals, contributions = evidence.signals or {}, evidence.features or {}
    policy, reason, decisions = rules.policy, why.reason, plan.decisions
    for rank, (k, score) in enumerate(zip(order.tolist(), scores[order].tolist(), strict=True), start=1):
        key = keys[k]
        features = partial(_pushed, contributions, key) if learned else (fired[k] if fired is not None else None)
        human = rank <= room
        decisions[key] = Decision(
            HUMAN if human else LLM,
            policy,
            partial(reason, human, rank, score, signals.get(key), features, learned),
            score if budgeted else None,
            features,
        )


def _pushed(contributions: Mapping[int, list[dict]], key: int) -> list[dict]:
    return list(contributions.get(key) or [])


def _gate(plan: Plan, items: Sequence[PlanItem], gate: str) -> int:
    """The gold gate: no item goes to judges that have not shown the campaign's gold accuracy. Items that would
    stay with them alone (an override or a waiting item included) go to humans, past the budget: the budget
    buys what it says, and the gate says what it adds."""
    gated = 0
    for item in items:
        decision = plan.decisions.get(item.key)
        if (decision.destination if decision else item.route) == LLM:
            plan.decisions[item.key] = Decision(HUMAN, GOLD_GATE, gold_gate_reason(gate))
            gated += 1
    return gated


def gold_gate_reason(gate_reason: str) -> str:
    """The decision's reason when the gold gate sends an item to humans instead of the judges alone."""
    return f"gold gate: not to the judges alone, as {gate_reason}; a human labels it"


def _slice_decision(rules: Rules) -> Decision:
    return Decision(
        BOTH,
        CALIBRATION,
        f"calibration slice ({rules.calibration_fraction:.0%} of the items, at random): humans and judges both "
        "label it, to measure their agreement and to train the learned policy",
    )


def _unusable_decision(policy: str, signals: Mapping | None) -> Decision:
    said = describe(signals) if signals is not None else "their output did not parse"
    features = policies.uncertainty_signals(signals) if signals is not None and policy in JUDGE_POLICIES else None
    reason = f"{policy}: the judges gave no usable verdict ({said}); a human labels it"
    return Decision(HUMAN, policy, reason, None, features)


def describe(signals: Mapping) -> str:
    """The judge signals of an item in words."""
    said = [words for key, words in SIGNAL_WORDS.items() if signals.get(key)]
    if signals.get("confidence") is not None:
        said.append(f"confidence {signals['confidence']:.2f}")
    return "; ".join(said) or "the judges agree in both orders"


def pushed_by(features: Sequence[Mapping] | None) -> str:
    """The features of a decision in words: "judge_uncertainty +1.20, response_b_words +0.40"."""
    named = []
    for f in features or []:
        if "contribution" in f:
            named.append(f"{f['feature']} {f['contribution']:+.2f}")
        else:
            named.append(f"{f['signal']} {f['weight']:+.2f}")
    return ", ".join(named)


@dataclass(frozen=True)
class _Why:
    rules: Rules
    of: int
    cut: float | None
    fallback: str

    def reason(self, human: bool, rank: int, score: float, signals, features, learned: bool) -> str:
        policy, target = self.rules.policy, self.rules.target
        if policy in STATIC_REASONS:
            return STATIC_REASONS[policy]
        where = "humans" if human else "the judges"
        budget = f"the budget is {target} human items"
        if policy == RANDOM:
            drawn = "drawn for humans" if human else "not drawn"
            return f"random: {drawn} (draw {score:.3f}, rank {rank} of {self.of}); {budget}"
        if learned:
            what = f"P(judges differ from human consensus) = {score:.2f}"
        else:
            what = f"judge uncertainty {score:.2f}" + (" (learned policy not trained yet)" if self.fallback else "")
        features = features() if callable(features) else features
        pushed = f", pushed by {pushed_by(features)}" if features else ""
        threshold = f"; cut-off {self.cut:.2f}" if self.cut is not None else ""
        if self.cut is not None and score == self.cut:
            threshold += " (tied with the cut-off: ties are drawn at random, the same way every pass)"
        said = describe(signals) if signals is not None else "no judge signals"
        return f"{policy}: {what}, rank {rank} of {self.of}{pushed} ({said}){threshold}; {budget}: to {where}"
