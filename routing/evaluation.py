"""routing_eval: replay a dataset with human and judge labels to measure what each human budget buys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np

from annotate.stats.aggregate import majority_vote
from routing import learned, plan, policies
from routing.features import feature_matrix, judge_signals, metadata_tags

OVERALL = "overall"
POLICIES = ("random", "judge_uncertainty", "learned")


def _direction(label: Mapping | None) -> float:
    """A/tie/B as -1/0/1; NaN for a missing (unparsable) label."""
    if label is None:
        return np.nan
    value = label[OVERALL]
    return float((value > 0) - (value < 0))


def strict_majority(directions: Sequence[Sequence[float]]) -> np.ndarray:
    """Per item, the direction more than half of its labels give; NaN when none does (or no labels).

    `majority_vote` gives the most frequent value; the check on its count makes it strict, so with four
    labels A, A, B, tie there is no gold rather than a gold of A backed by half the raters.
    """
    width = max((len(d) for d in directions), default=0)
    matrix = np.full((len(directions), max(width, 1)), np.nan)
    for row, values in enumerate(directions):
        matrix[row, : len(values)] = values
    top = np.asarray(majority_vote(matrix, tie_rule="none"), dtype=float)
    counts = (matrix == top[:, None]).sum(axis=1)
    labelled = (~np.isnan(matrix)).sum(axis=1)
    return np.where(counts * 2 > labelled, top, np.nan)


def _summary(values: Sequence[float]) -> dict:
    """Mean over repetitions and the 2.5–97.5 percentile interval of the repetitions' accuracies."""
    array = np.asarray(values, dtype=float)
    low, high = np.percentile(array, [2.5, 97.5])
    return {"accuracy": float(array.mean()), "ci95": [float(low), float(high)]}


def budget_key(budget: float | int) -> str:
    """A budget as a JSON key: a fraction as written ("0.25", 1.0 as "1"), a count as "n=3"."""
    if isinstance(budget, int) and not isinstance(budget, bool):
        return f"n={budget}"
    return format(float(budget), "g")


def _oracle(judge_right: np.ndarray, human_right: np.ndarray, budget: float | int) -> np.ndarray:
    """The best possible routing with exactly the budget's count of human items.

    Judge errors where the human stand-in is right first (each gains an item), then items where both are
    right or both wrong (no change), and only then judge-right, human-wrong items (each loses one).
    """
    n = len(judge_right)
    gain = human_right.astype(int) - judge_right.astype(int)
    order = np.argsort(-gain, kind="stable")
    human = np.zeros(n, dtype=bool)
    human[order[: policies.budget_count(n, budget)]] = True
    return human


def _folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Each item's cross-fitting fold: a random, balanced assignment."""
    return np.random.default_rng(seed).permutation(n) % max(min(folds, n), 1)


def _cross_fitted_probabilities(
    X: np.ndarray, judge_wrong: np.ndarray, trainable: np.ndarray, names: list[str], fold_of: np.ndarray, seed: int
) -> np.ndarray:
    """P(judge label differs from human consensus) per item, each from a model fitted on the other folds.

    The target of a training item uses all its human labels; an item's own labels never reach the model
    that scores it, so its gold cannot leak into its routing.
    """
    probabilities = np.zeros(len(X))
    for fold in np.unique(fold_of):
        scored = fold_of == fold
        train = ~scored & trainable
        result = learned.learned(X[train], judge_wrong[train], X[scored], feature_names=names)
        probabilities[scored] = result.probabilities
    return probabilities


def routed_to_humans(
    policy: str,
    keys: Sequence[int],
    budget: float | int,
    *,
    seed: int,
    signals: Sequence[Mapping | None],
    scores: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Which of these items `policy` sends to humans at this budget: `routing.plan.route_plan`, the live
    pass's plan, over items no one has routed yet (keys: their ids in the live pass, positions here), seeded
    as the pass is by its campaign. `signals` are the items' judge signals (`judge_signals`; None for an item
    no judge has seen, which a judge-first policy leaves waiting, with the judges): an unusable verdict goes
    to humans first, past the budget, as in the live pass. `scores`: the learned policy's."""
    keys = [int(k) for k in keys]
    items = [plan.PlanItem(key) for key in keys]
    rules = plan.Rules(policy=policy, target=policies.budget_count(len(keys), budget), seed=seed)
    by_key = {k: s for k, s in zip(keys, signals, strict=True) if s is not None}
    evidence = plan.Evidence(
        signals=by_key,
        scores=None if scores is None else dict(zip(keys, map(float, scores), strict=True)),
        unusable={k for k, s in by_key.items() if s["label"] is None},
    )
    humans = plan.route_plan(plan.partition(items, rules), rules, evidence).humans
    return np.fromiter((k in humans for k in keys), dtype=bool, count=len(keys))


def _route_within_folds(
    scores: np.ndarray,
    fold_of: np.ndarray,
    budget: float | int,
    seed: int,
    *,
    signals: Sequence[Mapping],
    keys: Sequence[int] | None = None,
) -> list[str]:
    """The learned policy's `routed_to_humans` inside each fold, the budget's count shared among folds by size
    (largest remainders). `keys`: the items' keys for the plan's draws (their positions unless given).

    Each fold's scores come from a different model, so they are ranked only against each other: pooled, a
    fold whose training set held fewer judge errors gets lower probabilities across the board, and those are
    the folds holding more errors (the training sets are the complements). A deployed policy scores every
    item with one model and has no such bias.
    """
    n = len(scores)
    k = policies.budget_count(n, budget)
    folds, sizes = np.unique(fold_of, return_counts=True)
    quota = sizes * k / max(n, 1)
    counts = np.floor(quota).astype(int)
    # The items left over go to the folds with the largest remainders (equal ones at random).
    counts += np.array(policies.route_top(quota - counts, k - int(counts.sum()), seed=seed)) == policies.HUMAN
    keys = np.arange(n) if keys is None else np.asarray(keys)
    human = np.zeros(n, dtype=bool)
    for fold, count in zip(folds, counts, strict=True):
        members = np.flatnonzero(fold_of == fold)
        human[members] = routed_to_humans(
            policies.LEARNED, keys[members], int(count), seed=seed, signals=[signals[i] for i in members],
            scores=scores[members],
        )  # fmt: skip
    return [policies.HUMAN if h else policies.LLM for h in human]


def _stand_ins(humans: list[list[float]], rng: np.random.Generator, single_label_gold: bool):
    """Per item, one human label drawn as the stand-in and the strict majority of the others as the gold (NaN:
    none); with `single_label_gold`, an item's only label is both."""
    stand_in = np.full(len(humans), np.nan)
    others: list[list[float]] = []
    for i, labels in enumerate(humans):
        if not labels:
            others.append([])
            continue
        pick = int(rng.integers(len(labels)))
        stand_in[i] = labels[pick]
        others.append(labels if single_label_gold and len(labels) == 1 else labels[:pick] + labels[pick + 1 :])
    return stand_in, (strict_majority(others) if humans else np.full(0, np.nan))


def _accuracy(destinations: Sequence[str] | np.ndarray, *, right: tuple[np.ndarray, np.ndarray]) -> float:
    """The share of right final labels: the stand-in's where an item went to humans ("both" included), else
    the judges'; `right` is (judge right, human right) per item."""
    judge_right, human_right = right
    return float(np.where(_to_humans(destinations), human_right, judge_right).mean())


def _to_humans(destinations: Sequence[str] | np.ndarray) -> np.ndarray:
    """A mask of the items on the human side, from destinations or already a mask."""
    array = np.asarray(destinations)
    return array if array.dtype == bool else array != policies.LLM


def _policy_routes(
    name: str,
    evaluated: np.ndarray,
    budget: float | int,
    seed: int,
    signals: list[dict | None],
    probabilities: np.ndarray | None,
    fold_of: np.ndarray,
) -> np.ndarray:
    """Which evaluated items policy `name` sends to humans: the learned one within folds, the others at once."""
    evaluated_signals = [signals[i] for i in evaluated]
    if name != "learned":
        return routed_to_humans(name, evaluated, budget, seed=seed, signals=evaluated_signals)
    return _to_humans(
        _route_within_folds(
            probabilities[evaluated], fold_of[evaluated], budget, seed, signals=evaluated_signals, keys=evaluated
        )
    )


def _prepared(rows: Sequence[Mapping], embeddings: bool):
    """The rows' judge signals, the judges' directions, the human labels' directions, and the feature matrix."""
    signals = [judge_signals(row.get("judge_labels") or []) for row in rows]
    judge_dir = np.array([_direction(s["label"]) for s in signals])
    humans = [[_direction(h["label"]) for h in row.get("human_labels") or [] if h.get("label")] for row in rows]
    vocabulary = sorted(set().union(*(metadata_tags(row.get("metadata")) for row in rows))) if rows else []
    X, names = feature_matrix(rows, signals, vocabulary=vocabulary, embeddings=embeddings)
    # What the plan sees: no signals for an item no judge has seen (its label is missing, not unusable).
    seen = [s if row.get("judge_labels") else None for s, row in zip(signals, rows, strict=True)]
    return seen, judge_dir, humans, X, names


def routing_eval(
    rows: Sequence[Mapping],
    *,
    budgets: Sequence[float | int] = (0.0, 0.1, 0.25, 0.5, 1.0),
    policy_names: Sequence[str] = POLICIES,
    repeats: int = 20,
    seed: int = 0,
    folds: int = 5,
    single_label_gold: bool = False,
    embeddings: bool = False,
) -> dict:
    """Accuracy against human consensus for each policy and human budget, averaged over repetitions.

    Rows are the issue's JSONL rows: a pairwise item plus `human_labels` and `judge_labels`. In each
    repetition, per item, one human label drawn at random stands in for "what an annotator would say", and
    the gold is the strict majority (`strict_majority`) of its other human labels; items without one sit the
    repetition out. An item routed to humans gets the stand-in, one routed to the LLM the judges' aggregate
    (`routing.features.judge_signals`); an unparsable or undecided aggregate is a wrong label. Each policy
    routes as the live pass does, through `routed_to_humans` (the pass's plan: ranking, tie-break, budget
    rules, an item without a usable verdict to humans first even past the budget). Accuracy is the share of
    final labels whose direction (A / tie / B) equals the gold's; budgets are fractions (floats: 1.0 is
    everything) or counts (ints) of the items evaluated in the repetition (`policies.budget_count`).

    `learned` is cross-fitted over `folds` folds (re-drawn each repetition): its target is 1 where the
    judges' aggregate differs from the strict majority of the training item's human labels, and each fold's
    items are ranked by their own model, the budget shared among folds by size (`_route_within_folds`). The
    oracle spends the budget on the judges' errors first (`_oracle`). Each point is the mean over
    repetitions and the 2.5–97.5 percentile interval, keyed by `budget_key`. `embeddings` adds the optional
    `embedding_similarity` feature (`routing.features.feature_matrix`).

    `single_label_gold`: an item with exactly one human label (LLMBar) uses it as both stand-in and gold, so
    all-human accuracy is 1 by construction; otherwise such items have no gold and are always left out.
    """
    if unknown := set(policy_names) - set(POLICIES):
        raise ValueError(f"unknown policies: {sorted(unknown)}; known: {list(POLICIES)}")
    n = len(rows)
    signals, judge_dir, humans, X, names = _prepared(rows, embeddings)
    consensus = strict_majority(humans)
    trainable = ~np.isnan(consensus)
    judge_wrong = (judge_dir != consensus).astype(int)  # NaN judge: != is True, an unparsable label is wrong
    results: dict[str, dict[str, list[float]]] = {name: {budget_key(b): [] for b in budgets} for name in policy_names}
    oracle: dict[str, list[float]] = {budget_key(b): [] for b in budgets}
    llm_only, human_only, evaluated_counts = [], [], []
    for repetition in range(repeats):
        rng = np.random.default_rng([seed, repetition])
        stand_in, gold = _stand_ins(humans, rng, single_label_gold)
        evaluated = np.flatnonzero(~np.isnan(gold))
        evaluated_counts.append(len(evaluated))
        if not len(evaluated):
            continue
        right = (judge_dir[evaluated] == gold[evaluated], stand_in[evaluated] == gold[evaluated])
        accuracy = partial(_accuracy, right=right)
        llm_only.append(accuracy(policies.all_llm(len(evaluated))))
        human_only.append(accuracy(policies.all_human(len(evaluated))))
        policy_seed = int(rng.integers(2**31))
        fold_of = _folds(n, folds, policy_seed)
        probabilities = (
            _cross_fitted_probabilities(X, judge_wrong, trainable, names, fold_of, policy_seed)
            if "learned" in policy_names
            else None
        )
        for budget in budgets:
            oracle[budget_key(budget)].append(accuracy(_oracle(*right, budget)))
            for name in policy_names:
                routed = _policy_routes(name, evaluated, budget, policy_seed, signals, probabilities, fold_of)
                results[name][budget_key(budget)].append(accuracy(routed))
    if not llm_only:
        raise ValueError("no item has a gold label in any repetition: the protocol needs two human labels per item")
    return {
        "n_items": n,
        "n_evaluated_mean": float(np.mean(evaluated_counts)),
        "repeats": repeats,
        "policies": {name: {key: _summary(v) for key, v in by_budget.items()} for name, by_budget in results.items()},
        "oracle": {key: _summary(v) for key, v in oracle.items()},
        "all_llm": _summary(llm_only),
        "all_human": _summary(human_only),
    }


def learned_importances(rows: Sequence[Mapping], *, embeddings: bool = False) -> dict[str, float]:
    """Which features make human labels worth their cost: the learned policy's coefficients on all rows."""
    signals = [judge_signals(row.get("judge_labels") or []) for row in rows]
    judge_dir = np.array([_direction(s["label"]) for s in signals])
    consensus = strict_majority(
        [[_direction(h["label"]) for h in row.get("human_labels") or [] if h.get("label")] for row in rows]
    )
    vocabulary = sorted(set().union(*(metadata_tags(row.get("metadata")) for row in rows))) if rows else []
    X, names = feature_matrix(rows, signals, vocabulary=vocabulary, embeddings=embeddings)
    keep = ~np.isnan(consensus)
    wrong = (judge_dir != consensus).astype(int)
    return learned.learned(X[keep], wrong[keep], X[:0], feature_names=names).importances


def llmbar_rows(dataset: Sequence[Mapping], results: Sequence[Mapping], *, subset: str = "") -> list[dict]:
    """LLMBar instances with GPT-4's verdicts as routing_eval rows.

    `dataset` is an LLMBar `dataset.json` (input, output_1, output_2, label 1 or 2) and `results` the
    matching `gpt4-*-result.json`, in the same order. Output 1 is response A. The gold label is the one
    human label ({"overall": -1} when output 1 is better, 1 otherwise); GPT-4 is one judge whose `label`
    and `label_swapped` are the last round's winners with swap = False and True (already in the item's
    order). LLMBar has no ties, so a judge that flips aggregates to a tie and is wrong: the all-LLM accuracy
    is LLMBar's `correct_both`. Evaluate with `single_label_gold=True`.
    """
    if len(dataset) != len(results):
        raise ValueError(f"{len(dataset)} instances but {len(results)} results")
    rows = []
    for index, (instance, result) in enumerate(zip(dataset, results, strict=True)):
        if (instance["input"], instance["output_1"], instance["output_2"]) != (
            result["input"],
            result["output_1"],
            result["output_2"],
        ):
            raise ValueError(f"instance {index} does not match its result")
        last = result["results"][-1]

        def verdict(record: Mapping) -> dict[str, int] | None:
            winner = str(record.get("winner"))
            return {OVERALL: -1} if winner == "1" else {OVERALL: 1} if winner == "2" else None

        rows.append(
            {
                "external_id": f"llmbar-{subset}-{index}" if subset else f"llmbar-{index}",
                "prompt": instance["input"],
                "response_a": instance["output_1"],
                "response_b": instance["output_2"],
                "metadata": {"source": "llmbar", **({"subset": subset} if subset else {})},
                "human_labels": [{"annotator": "gold", "label": {OVERALL: -1 if int(instance["label"]) == 1 else 1}}],
                "judge_labels": [
                    {
                        "judge": "gpt4-swap",
                        "label": verdict(last["swap = False"]),
                        "label_swapped": verdict(last["swap = True"]),
                    }
                ],
            }
        )
    return rows
