"""A campaign's statistics figures (`campaign_figures`): its labels read once into DataFrames and handed to the
pure functions in annotate/stats. The statistics job (annotate/services/stats.py) imports this module when it
computes: pandas and the figures' code (~100 MiB) stay out of the processes that only ask for statistics.

Only the human labels that count enter (annotate/services/quality/labels.py: not an excluded annotator's,
not too fast, not a qualification answer); the snapshot says how many were left out (`dropped_labels`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import Adjudication, Annotation, Campaign, Item, JudgeVerdict
from annotate.services.quality.labels import countable_human_labels, dropped_human_labels
from annotate.stats.agreement import agreement_report, rating_matrix
from annotate.stats.leaderboard import bradley_terry_bootstrap, hybrid_outcomes, win_rate_matrix
from annotate.stats.raters import judge_report, majority_by_item, rater_report
from routing import api as routing_api


def _domain(key: label_schema.LabelKey) -> list[int]:
    return [v for v in range(key.low, key.high + 1) if not (key.pairwise and v == 0 and not key.allow_tie)]


def _labels(campaign: Campaign) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    humans = pd.DataFrame.from_records(
        countable_human_labels(Annotation.objects.filter(campaign=campaign), campaign=campaign).values_list(
            "item_id", "annotator__username", "label", "position_swapped", "seconds"
        ),
        columns=["item", "rater", "label", "position_swapped", "seconds"],
    )
    judges = pd.DataFrame.from_records(
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE).values_list(
            "item_id", "judge__name", "label", "position_swapped", "parse_failed", "sample_index", "prompt_version"
        ),
        columns=["item", "judge", "label", "position_swapped", "parse_failed", "sample_index", "prompt_version"],
    )
    items = pd.DataFrame.from_records(
        Item.objects.filter(campaign=campaign).values_list("id", "gold_label", "model_a", "model_b", "metadata"),
        columns=["item", "gold_label", "model_a", "model_b", "metadata"],
    )
    return humans, judges, items


def _values(labels: pd.Series, key: str) -> pd.Series:
    return labels.map(lambda label: label.get(key, np.nan) if isinstance(label, dict) else np.nan).astype(float)


def _leaderboard(comparisons: pd.DataFrame, bootstrap: int, seed: int) -> list[dict]:
    if comparisons.empty:
        return []
    ratings = bradley_terry_bootstrap(comparisons, n=max(bootstrap, 1), seed=seed)
    return ratings.rows()


def campaign_figures(*, campaign: Campaign, bootstrap: int = 1000, seed: int = 0) -> dict:
    """The snapshot `compute_stats --json` prints (see the issue for its shape)."""
    humans, judges, items = _labels(campaign)
    keys = label_schema.label_keys(campaign.label_schema, campaign.kind)
    gold = items.set_index("item")["gold_label"]
    criteria: dict[str, dict] = {}
    for key in keys:
        long = pd.DataFrame(
            {"item": humans["item"], "rater": humans["rater"], "value": _values(humans["label"], key.name)}
        )
        long = long[long["value"].notna()]
        matrix = rating_matrix(long) if not long.empty else pd.DataFrame(dtype=float)
        criteria[key.name] = agreement_report(matrix, domain=_domain(key), ordinal=True, bootstrap=bootstrap, seed=seed)
    segments = _segments(items, humans, keys)
    people = {key.name: _people(key, humans, judges, gold) for key in keys}
    # The top-level tables are the campaign's main criterion: `overall` when there is one.
    main = next((k for k in keys if k.name == label_schema.OVERALL), keys[0])
    human_main, annotators, judge_rows, confusion = people[main.name]
    leaderboards: dict = _no_leaderboards()
    if main.pairwise:
        leaderboards = _leaderboards(campaign, items, human_main, main, bootstrap, seed)
    return {
        "campaign": campaign.slug,
        "computed_at": timezone.now().isoformat(),
        "n_items": int(len(items)),
        "n_human_labels": int(len(humans)),
        "n_judge_labels": int(len(judges)),
        # Human labels left out by the rule of which labels count, per reason.
        "dropped_labels": dropped_human_labels(campaign=campaign),
        "criteria": criteria,
        "segments": segments,
        "annotators": annotators,
        "judges": judge_rows,
        "judge_confusion": confusion,
        "by_criterion": {
            name: {"annotators": rows, "judges": judge_list} for name, (_, rows, judge_list, _) in people.items()
        },
        # Final labels: a reviewer's adjudication, else the human strict majority where humans labelled the
        # item (none: undecided, left out, as the exports do), else the judges' verdict.
        "leaderboard": leaderboards["hybrid"],
        "leaderboards": leaderboards,
        # What the budget is expected to buy, measured on the calibration slice.
        "routing": routing_api.routing_forecast(campaign=campaign),
    }


def _people(
    key: label_schema.LabelKey, humans: pd.DataFrame, judges: pd.DataFrame, gold: pd.Series
) -> tuple[pd.DataFrame, list[dict], list[dict], list[dict]]:
    """One criterion's annotator and judge tables (and its long human labels, and the judges' confusion)."""
    human_labels = pd.DataFrame(
        {
            "item": humans["item"],
            "rater": humans["rater"],
            "value": _values(humans["label"], key.name),
            "position_swapped": humans["position_swapped"],
            "seconds": humans["seconds"].astype(float),
            "gold": humans["item"].map(lambda i: _gold_value(gold.get(i), key.name)),
        }
    )
    annotators = [{"annotator": row.pop("rater"), **row} for row in rater_report(human_labels, pairwise=key.pairwise)]
    if judges.empty:
        return human_labels, annotators, [], []
    judge_labels = pd.DataFrame(
        {
            "item": judges["item"],
            "judge": judges["judge"],
            "value": _values(judges["label"], key.name),
            "position_swapped": judges["position_swapped"].astype(bool),
            "parse_failed": judges["parse_failed"].astype(bool),
            "sample_index": judges["sample_index"],
            "prompt_version": judges["prompt_version"],
        }
    )
    # A judge may rate only some criteria (imported verdicts often give `overall` alone).
    judge_labels = judge_labels[judge_labels["value"].notna() | judge_labels["parse_failed"]]
    if judge_labels.empty:
        return human_labels, annotators, [], []
    majority = majority_by_item(human_labels, pairwise=key.pairwise)
    judge_rows = judge_report(judge_labels, majority, pairwise=key.pairwise)
    return human_labels, annotators, judge_rows, _confusion(judge_labels, majority, key=key)


MAX_SEGMENT_VALUES = 20


def _segments(items: pd.DataFrame, humans: pd.DataFrame, keys: list[label_schema.LabelKey]) -> dict:
    """Agreement per value of each metadata tag the import carried (domain, safety concern, ...): every
    criterion, no bootstrap. Tags with a single value, more than MAX_SEGMENT_VALUES values, or values
    that are not plain strings, numbers or booleans (free text, lists) are not segments."""
    if items.empty or humans.empty:
        return {}
    tags = pd.json_normalize(items["metadata"].map(lambda m: m if isinstance(m, dict) else {}).tolist(), max_level=0)
    tags.index = items["item"].to_numpy()
    out: dict[str, dict] = {}
    for tag in sorted(tags.columns):
        column = tags[tag].dropna()
        if column.empty or not column.map(lambda v: isinstance(v, (str, int, float, bool))).all():
            continue
        column = column.astype(str)
        if not 2 <= column.nunique() <= MAX_SEGMENT_VALUES:
            continue
        by_value: dict[str, dict] = {}
        for value, members in column.groupby(column).groups.items():
            subset = humans[humans["item"].isin(members)]
            by_value[value] = {"n_items": int(len(members))}
            for key in keys:
                long = pd.DataFrame(
                    {"item": subset["item"], "rater": subset["rater"], "value": _values(subset["label"], key.name)}
                ).dropna(subset=["value"])
                matrix = rating_matrix(long) if not long.empty else pd.DataFrame(dtype=float)
                by_value[value][key.name] = agreement_report(matrix, domain=_domain(key), ordinal=True)
        out[tag] = by_value
    return out


def _no_leaderboards() -> dict:
    return {
        "human": [],
        "judge": [],
        "hybrid": [],
        "win_rates": {"models": [], "rates": []},
        "dropped": {"no_majority": 0},
        "adjudicated": 0,
    }


def _leaderboards(
    campaign: Campaign,
    items: pd.DataFrame,
    human_main: pd.DataFrame,
    main: label_schema.LabelKey,
    bootstrap: int,
    seed: int,
) -> dict:
    """Bradley–Terry from every human label, from the judges' verdict per item, and from the final label
    per item (`hybrid_outcomes`); ties count half. `dropped.no_majority`: items the hybrid board leaves out."""
    models = items.set_index("item")[["model_a", "model_b"]]
    models = models[(models["model_a"] != "") & (models["model_b"] != "")]
    if models.empty:
        return _no_leaderboards()

    def comparisons(outcomes: pd.Series) -> pd.DataFrame:
        joined = pd.DataFrame({"item": outcomes.index, "outcome": outcomes.to_numpy()}).join(models, on="item")
        joined = joined.dropna(subset=["model_a", "outcome"])
        return joined[["model_a", "model_b", "outcome"]]

    humans = human_main[human_main["value"].notna()]
    per_label = pd.Series(np.sign(humans["value"]).to_numpy(), index=humans["item"].to_numpy())
    verdicts = pd.Series(
        {
            item_id: np.sign(label[main.name])
            for item_id, label in JudgeVerdict.objects.filter(campaign=campaign, label__isnull=False).values_list(
                "item_id", "label"
            )
            if main.name in label
        },
        dtype=float,
    )
    adjudicated = pd.Series(
        {
            item_id: np.sign(label[main.name])
            for item_id, label in Adjudication.objects.filter(campaign=campaign).values_list("item_id", "label")
            if isinstance(label, dict) and label.get(main.name) is not None
        },
        dtype=float,
    )
    final, undecided = hybrid_outcomes(human_main=human_main, verdicts=verdicts, adjudicated=adjudicated)
    final_comparisons = comparisons(final)
    rates = win_rate_matrix(final_comparisons) if not final_comparisons.empty else pd.DataFrame()
    return {
        "human": _leaderboard(comparisons(per_label), bootstrap, seed),
        "judge": _leaderboard(comparisons(verdicts), bootstrap, seed),
        "hybrid": _leaderboard(final_comparisons, bootstrap, seed),
        # Row model's share of wins against the column model over the final labels (ties half; null: never met).
        "win_rates": {
            "models": [str(m) for m in rates.index],
            "rates": [[None if pd.isna(v) else round(float(v), 4) for v in row] for row in rates.to_numpy()],
        },
        # Items with both models named whose labels have no strict majority: on no board, as in no export.
        "dropped": {"no_majority": int(models.index.isin(undecided).sum())},
        "adjudicated": int(models.index.isin(adjudicated.index).sum()),
    }


def _confusion(judge_main: pd.DataFrame, majority: pd.Series, *, key: label_schema.LabelKey) -> list[dict]:
    """Per judge, human majority (rows) against the judge's verdict (columns), on the main criterion.
    Pairwise values are compared by side (A, tie, B), as the majority is."""
    values = [-1, 0, 1] if key.pairwise else _domain(key)
    out = []
    for judge, rows in judge_main.groupby("judge", sort=True):
        verdict = np.sign(rows["value"]) if key.pairwise else rows["value"]
        paired = pd.DataFrame({"human": rows["item"].map(majority), "judge": verdict}).dropna()
        counts = pd.crosstab(paired["human"], paired["judge"]).reindex(index=values, columns=values, fill_value=0)
        out.append({"judge": judge, "values": values, "counts": counts.astype(int).values.tolist()})
    return out


def _gold_value(gold_label, key: str) -> float:
    return float(gold_label[key]) if isinstance(gold_label, dict) and key in gold_label else np.nan
