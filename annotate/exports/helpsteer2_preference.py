"""The `helpsteer2-preference` format: both responses, the aggregated preference strength, every label behind it.

Columns: id, prompt, response_1, response_2, model_1, model_2, preference_strength, agreement, n_labels,
source, individual_preference, final_source, adjudication_reason and, when asked for, soft_labels.
Response 1 is the item's response A and response 2 its response B, so preference_strength keeps
HelpSteer2-Preference's sign: negative = response 1 better, positive = response 2.
`individual_preference` lists each counted label as HelpSteer2-Preference does ({score, reasoning}), plus
who gave it and in which order the responses were shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from annotate import schema as label_schema
from annotate.exports.aggregate import FinalLabel, Label
from annotate.exports.context import ExportContext, column, final_columns, final_values, prompt_type, prompt_value

NAME = "helpsteer2-preference"
KINDS = ("pairwise", "both")
PAIRWISE = True

INDIVIDUAL = pa.struct(
    [
        pa.field("score", pa.int64()),
        pa.field("reasoning", pa.string()),
        pa.field("source", pa.string()),
        pa.field("rater", pa.string()),
        pa.field("position_swapped", pa.bool_()),
    ]
)


def columns(ctx: ExportContext) -> pa.Schema:
    return pa.schema(
        [
            column("id", pa.string(), "The item's id from the import."),
            column("prompt", prompt_type(ctx), "The prompt: a list of chat messages {role, content}, or a string."),
            column("response_1", pa.string(), "The item's response A."),
            column("response_2", pa.string(), "The item's response B."),
            column("model_1", pa.string(), "The model that wrote response 1 (empty if unknown)."),
            column("model_2", pa.string(), "The model that wrote response 2 (empty if unknown)."),
            column(
                "preference_strength",
                pa.float64(),
                "Mean overall value on the winning side: negative = response 1 better, 0 = tie, positive = "
                "response 2 better.",
            ),
            column("agreement", pa.float64(), "Share of the counted labels that agree with the final direction."),
            column("n_labels", pa.int64(), "How many labels were counted."),
            column("source", pa.string(), "Whose labels were counted: human or judge."),
            column(
                "individual_preference",
                pa.list_(INDIVIDUAL),
                "Every counted label: score (overall, same sign as preference_strength), reasoning (the "
                "justification), source, rater (annotator pseudonym or judge name), position_swapped (true when "
                "response 2 was shown first).",
            ),
            *final_columns(ctx),
        ]
    )


def individual(label: Label) -> dict:
    judge = label.get("judge") or {}
    return {
        "score": label["label"].get(label_schema.OVERALL),
        "reasoning": label.get("justification") or "",
        "source": label.get("source"),
        "rater": label.get("annotator") if label.get("source") == "human" else judge.get("name"),
        "position_swapped": label.get("position_swapped"),
    }


def rows(item: Mapping, labels: Sequence[Label], final: FinalLabel, ctx: ExportContext) -> Iterator[dict]:
    if final.direction is None:
        return
    yield {
        "id": item["id"],
        "prompt": prompt_value(item, ctx),
        "response_1": item.get("response_a") or "",
        "response_2": item.get("response_b") or "",
        "model_1": item.get("model_a") or "",
        "model_2": item.get("model_b") or "",
        "preference_strength": final.preference_strength,
        "agreement": final.agreement,
        "n_labels": final.n_votes,
        "source": final.source,
        "individual_preference": [
            individual(label) for label in final.labels if label["label"].get(label_schema.OVERALL) is not None
        ],
        **final_values(final, ctx),
    }
