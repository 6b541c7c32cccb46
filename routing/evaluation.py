"""routing_eval: replay a dataset with human and judge labels to measure what each human budget buys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from annotate.stats.aggregate import majority_vote
from routing import learned, policies
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
        result = learned.learned(X[train], judge_wrong[train], X[scored], 0, feature_names=names, seed=seed)
        probabilities[scored] = result.probabilities
    return probabilities


def _route_within_folds(scores: np.ndarray, fold_of: np.ndarray, budget: float | int, seed: int) -> list[str]:
    """`policies.route_top` inside each fold, the budget's count shared among folds by size (largest remainders).

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
    destinations = [policies.LLM] * n
    for fold, count in zip(folds, counts, strict=True):
        members = np.flatnonzero(fold_of == fold)
        for index, destination in zip(members, policies.route_top(scores[members], int(count), seed=seed), strict=True):
            destinations[index] = destination
    return destinations


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
    repetition, for each item, one human label chosen at random is the stand-in for "what an annotator
    would say", and the gold is the strict majority (`strict_majority`) of its other human labels; items
    without one sit that repetition out. An item routed to humans gets the stand-in, one routed to the LLM
    the judges' aggregate (`routing.features.judge_signals`: both orders, then the judges); an unparsable
    or undecided aggregate counts as a wrong label. Accuracy is the share of final labels whose direction
    (A / tie / B) equals the gold's; budgets are fractions (floats: 1.0 is everything) or counts (ints: 1 is
    one item) of the items evaluated in the repetition (`policies.budget_count`).

    `learned` is cross-fitted over `folds` folds (re-drawn each repetition): its target is 1 where the
    judges' aggregate differs from the strict majority of all the training item's human labels, and each
    fold's items are ranked by their own model, the budget shared among folds by size
    (`_route_within_folds`). The oracle spends the budget on the judges' errors first (`_oracle`). Each
    point is the mean over repetitions and the 2.5–97.5 percentile interval of the repetitions' accuracies,
    keyed by `budget_key`.

    `embeddings` adds the optional `embedding_similarity` feature (`routing.features.feature_matrix`).

    `single_label_gold`: an item with exactly one human label (LLMBar) uses it as both stand-in and gold, so
    all-human accuracy is 1 by construction; otherwise such items have no gold and are always left out.
    """
    unknown = set(policy_names) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown policies: {sorted(unknown)}; known: {list(POLICIES)}")
    n = len(rows)
    signals = [judge_signals(row.get("judge_labels") or []) for row in rows]
    judge_dir = np.array([_direction(s["label"]) for s in signals])
    humans = [[_direction(h["label"]) for h in row.get("human_labels") or [] if h.get("label")] for row in rows]
    vocabulary = sorted(set().union(*(metadata_tags(row.get("metadata")) for row in rows))) if rows else []
    X, names = feature_matrix(rows, signals, vocabulary=vocabulary, embeddings=embeddings)
    consensus = strict_majority(humans)
    trainable = ~np.isnan(consensus)
    judge_wrong = (judge_dir != consensus).astype(int)  # NaN judge: != is True, an unparsable label is wrong
    uncertainty = np.array([policies.uncertainty_score(s) for s in signals])

    results: dict[str, dict[str, list[float]]] = {name: {budget_key(b): [] for b in budgets} for name in policy_names}
    oracle: dict[str, list[float]] = {budget_key(b): [] for b in budgets}
    llm_only: list[float] = []
    human_only: list[float] = []
    evaluated_counts: list[int] = []
    for repetition in range(repeats):
        rng = np.random.default_rng([seed, repetition])
        stand_in = np.full(n, np.nan)
        gold = np.full(n, np.nan)
        others: list[list[float]] = []
        for i, labels in enumerate(humans):
            if not labels:
                others.append([])
                continue
            pick = int(rng.integers(len(labels)))
            stand_in[i] = labels[pick]
            others.append(labels if single_label_gold and len(labels) == 1 else labels[:pick] + labels[pick + 1 :])
        gold = strict_majority(others) if n else gold
        evaluated = np.flatnonzero(~np.isnan(gold))
        evaluated_counts.append(len(evaluated))
        if not len(evaluated):
            continue
        judge_right = judge_dir[evaluated] == gold[evaluated]
        human_right = stand_in[evaluated] == gold[evaluated]

        def accuracy(destinations: Sequence[str], judge_right=judge_right, human_right=human_right) -> float:
            human = np.array([d != policies.LLM for d in destinations])  # "both": the human label stands
            return float(np.where(human, human_right, judge_right).mean())

        llm_only.append(accuracy(policies.all_llm(len(evaluated))))
        human_only.append(accuracy(policies.all_human(len(evaluated))))
        policy_seed = int(rng.integers(2**31))
        probabilities = None
        fold_of = _folds(n, folds, policy_seed)
        if "learned" in policy_names:
            probabilities = _cross_fitted_probabilities(X, judge_wrong, trainable, names, fold_of, policy_seed)
        for budget in budgets:
            key = budget_key(budget)
            human = _oracle(judge_right, human_right, budget)
            oracle[key].append(float(np.where(human, human_right, judge_right).mean()))
            for name in policy_names:
                if name == "random":
                    routed = policies.random_policy(len(evaluated), budget, policy_seed)
                elif name == "judge_uncertainty":
                    routed = policies.judge_uncertainty(uncertainty[evaluated], budget, seed=policy_seed)
                else:
                    routed = _route_within_folds(probabilities[evaluated], fold_of[evaluated], budget, policy_seed)
                results[name][key].append(accuracy(routed))

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
    return learned.learned(X[keep], wrong[keep], X[:0], 0, feature_names=names).importances


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
