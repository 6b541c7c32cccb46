"""Per-rater and per-judge quality: agreement with the others, gold accuracy, position bias, consistency.

Inputs are long DataFrames of one criterion's labels, one row per label, values in the item's own A/B
orientation (negative favours A, 0 a tie, positive B for pairwise aspects; scores for rubric criteria).

How two labels "match" is explicit (`match`): "exact" compares values, "sign" compares the side they
favour (A, tie or B), so "A is much better" matches "A is better". The default is "sign" for pairwise
aspects, where a preference dataset's question is which response wins, and "exact" for rubric scores.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from annotate.stats.aggregate import majority_vote_long
from annotate.stats.agreement import cohen_kappa

Match = Literal["exact", "sign"]


def _match_mode(pairwise: bool, match: Match | None) -> Match:
    mode = match or ("sign" if pairwise else "exact")
    if mode not in ("exact", "sign"):
        raise ValueError(f"match must be 'exact' or 'sign', got {match!r}")
    return mode


def _compared(values: pd.Series | np.ndarray, mode: Match) -> np.ndarray:
    """Values as compared under `mode` (NaN stays NaN)."""
    array = np.asarray(values, dtype=float)
    return np.sign(array) if mode == "sign" else array


def _none_if_nan(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the labels frame lacks column(s) {missing}")


def leave_one_out_agreement(items: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each label, whether the item's other labels have a strict majority, and whether it equals it.

    Returns (decided, agrees), boolean arrays aligned with the input. A label is undecided when it is the
    item's only one or when the others' most frequent values tie; `agrees` is False there.
    """
    item_codes, _ = pd.factorize(items)
    value_codes, uniques = pd.factorize(values)
    n_items, n_values = len(np.unique(item_codes)), len(uniques)
    if n_values == 0:
        empty = np.zeros(len(values), dtype=bool)
        return empty, empty
    counts = np.bincount(item_codes * n_values + value_codes, minlength=n_items * n_values).reshape(n_items, -1)
    others = counts[item_codes]
    others[np.arange(len(value_codes)), value_codes] -= 1
    top = others.max(axis=1)
    decided = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    agrees = decided & (others.argmax(axis=1) == value_codes)
    return decided, agrees


def rater_report(labels: pd.DataFrame, *, pairwise: bool, match: Match | None = None) -> list[dict]:
    """Quality figures per rater, from one criterion's labels.

    `labels` columns: item, rater, value; optional position_swapped (True = response B was shown on the
    left; None/NaN = unknown), seconds (time on task), gold (the item's gold value, NaN when not a gold
    item). Rows with a missing value are ignored.

    Returns one dict per rater, sorted by rater:
      rater, n (labels),
      agreement_with_consensus: share of the rater's labels that match the strict majority of the
        OTHER raters on the item (labels whose item has no other label, or whose other labels tie at
        the top, are left out; None when none is left);
      gold_accuracy: share of labels on gold items that match the gold value (None without gold items);
      position_bias: pairwise only, share of non-tie labels with a known display order that prefer the
        response shown on the LEFT (0.5 is unbiased; None for rubric or without order information);
      tie_rate: pairwise only, share of labels that are ties (None for rubric);
      median_seconds: median time on task (None when no time was recorded).
    """
    _require(labels, ("item", "rater", "value"))
    mode = _match_mode(pairwise, match)
    frame = labels[labels["value"].notna()].reset_index(drop=True)
    if frame.empty:
        return []
    raw = frame["value"].to_numpy(dtype=float)
    compared = _compared(raw, mode)
    decided, agrees = leave_one_out_agreement(frame["item"].to_numpy(), compared)
    columns = {
        "rater": frame["rater"],
        "consensus": np.where(decided, agrees.astype(float), np.nan),
        "seconds": pd.to_numeric(frame["seconds"], errors="coerce") if "seconds" in frame else np.nan,
    }
    if "gold" in frame:
        gold = _compared(pd.to_numeric(frame["gold"], errors="coerce"), mode)
        columns["gold"] = np.where(np.isnan(gold), np.nan, (compared == gold).astype(float))
    else:
        columns["gold"] = np.nan
    if pairwise:
        columns["tie"] = (raw == 0).astype(float)
        if "position_swapped" in frame:
            swapped = frame["position_swapped"]
            known = swapped.notna().to_numpy() & (raw != 0)
            # The left response is A unless the order was swapped; a negative value says A is better.
            left_better = (raw < 0) != swapped.fillna(False).astype(bool).to_numpy()
            columns["left"] = np.where(known, left_better.astype(float), np.nan)
        else:
            columns["left"] = np.nan
    else:
        columns["tie"] = np.nan
        columns["left"] = np.nan
    table = pd.DataFrame(columns)
    grouped = table.groupby("rater", sort=True, dropna=False)
    summary = grouped.agg(
        n=("rater", "size"),
        agreement_with_consensus=("consensus", "mean"),
        gold_accuracy=("gold", "mean"),
        position_bias=("left", "mean"),
        tie_rate=("tie", "mean"),
        median_seconds=("seconds", "median"),
    )
    return [
        {
            "rater": rater,
            "n": int(row["n"]),
            "agreement_with_consensus": _none_if_nan(row["agreement_with_consensus"]),
            "gold_accuracy": _none_if_nan(row["gold_accuracy"]),
            "position_bias": _none_if_nan(row["position_bias"]),
            "tie_rate": _none_if_nan(row["tie_rate"]),
            "median_seconds": _none_if_nan(row["median_seconds"]),
        }
        for rater, row in summary.iterrows()
    ]


def judge_report(
    labels: pd.DataFrame, human_majority: pd.Series, *, pairwise: bool, match: Match | None = None
) -> list[dict]:
    """Quality figures per LLM judge, against the human majority of the same criterion.

    `labels` columns: item, judge, value (NaN when the output could not be parsed), position_swapped
    (bool: the order the judge was shown); optional parse_failed (bool; default: value is NaN),
    sample_index and prompt_version (part of what makes an original/swapped pair). Values are in the
    item's own A/B orientation, already mapped back from the swapped order.
    `human_majority`: the human majority value per item (index: item), NaN where there is none;
    compute it with the same `match` (for "sign", the majority of the humans' signs).

    Returns one dict per judge, sorted by judge:
      judge, n (judgments, parsed or not),
      accuracy_vs_human_majority: share of parsed judgments on items with a human majority that match it
        (each judgment counts: a judge asked in both orders is scored on both);
      cohen_kappa_vs_human_majority: Cohen's kappa (unweighted) over the same pairs;
      position_consistency: share of original/swapped pairs (same item, sample, prompt) with both
        parsed whose verdicts match (MT-Bench's consistency; None without such pairs);
      parse_failure_rate: share of judgments that could not be parsed.
    """
    _require(labels, ("item", "judge", "value", "position_swapped"))
    mode = _match_mode(pairwise, match)
    if labels.empty:
        return []
    frame = labels.reset_index(drop=True)
    value = _compared(frame["value"], mode)
    failed = frame["parse_failed"].astype(bool).to_numpy() if "parse_failed" in frame else np.isnan(value)
    majority = _compared(human_majority.reindex(frame["item"]).to_numpy(dtype=float), mode)
    swapped = frame["position_swapped"].astype(bool).to_numpy()
    pair_keys = ["judge", "item"] + [c for c in ("sample_index", "prompt_version") if c in frame]

    out = []
    for judge, rows in frame.groupby("judge", sort=True).groups.items():
        rows = np.asarray(rows)
        verdict = np.where(failed[rows], np.nan, value[rows])
        truth = majority[rows]
        both = ~np.isnan(verdict) & ~np.isnan(truth)
        out.append(
            {
                "judge": judge,
                "n": len(rows),
                "accuracy_vs_human_majority": float(np.mean(verdict[both] == truth[both])) if both.any() else None,
                "cohen_kappa_vs_human_majority": cohen_kappa(verdict[both], truth[both]) if both.any() else None,
                "position_consistency": _position_consistency(
                    frame.loc[rows, pair_keys].assign(swapped=swapped[rows], verdict=verdict)
                ),
                "parse_failure_rate": float(np.mean(failed[rows])),
            }
        )
    return out


def _position_consistency(judgments: pd.DataFrame) -> float | None:
    """Share of original/swapped pairs whose verdicts match; `judgments` has the pair keys, swapped, verdict."""
    parsed = judgments.dropna(subset=["verdict"])
    keys = [c for c in parsed.columns if c not in ("swapped", "verdict")]
    # Several judgments under one key and order (a re-run) would make the pairing ambiguous: keep the first.
    order = np.where(parsed["swapped"].to_numpy(dtype=bool), "swapped", "original")
    wide = parsed.assign(order=order).pivot_table(index=keys, columns="order", values="verdict", aggfunc="first")
    if "original" not in wide.columns or "swapped" not in wide.columns:
        return None
    paired = wide[["original", "swapped"]].dropna()
    if paired.empty:
        return None
    return float((paired["original"] == paired["swapped"]).mean())


def majority_by_item(labels: pd.DataFrame, *, pairwise: bool, match: Match | None = None) -> pd.Series:
    """The strict majority per item of long labels (item, value) under `match`; NaN on a tie at the top.

    What `judge_report` wants as `human_majority`: under "sign" it is the majority of the signs.
    """
    _require(labels, ("item", "value"))
    mode = _match_mode(pairwise, match)
    frame = labels[labels["value"].notna()]
    compared = pd.DataFrame({"item": frame["item"].to_numpy(), "value": _compared(frame["value"], mode)})
    return majority_vote_long(compared, tie_rule="none").rename("human_majority")
