"""The `trl` format: one preference pair per item, as TRL's DPO and reward trainers (and `datasets`) read it.

Columns: prompt, chosen, rejected — conversational (prompt a message list, chosen and rejected each one
assistant message) when the export is, strings otherwise — then margin, preference_strength, source,
agreement, n_labels, id, model_chosen, model_rejected, final_source, adjudication_reason and, when asked for,
soft_labels.

A tie has no winner: its row keeps the item's order (chosen = response A, rejected = response B) with margin
0, and goes to the "ties" split (or is dropped), never to train or test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from annotate.exports.aggregate import FinalLabel, Label
from annotate.exports.context import (
    ExportContext,
    column,
    completion,
    final_columns,
    final_values,
    prompt_type,
    prompt_value,
)

NAME = "trl"
KINDS = ("pairwise", "both")
PAIRWISE = True


def columns(ctx: ExportContext) -> pa.Schema:
    text = prompt_type(ctx)
    return pa.schema(
        [
            column("prompt", text, "The prompt: a list of chat messages {role, content}, or a string."),
            column("chosen", text, "The preferred response (an assistant message in conversational exports)."),
            column("rejected", text, "The other response."),
            column(
                "margin",
                pa.float64(),
                "|preference_strength|: how much better chosen is, for TRL RewardTrainer's margin (0 for ties).",
            ),
            column(
                "preference_strength",
                pa.float64(),
                "Mean overall value on the winning side, relative to the item's responses A and B: "
                "negative = A better, 0 = tie, positive = B better (HelpSteer2-Preference's sign).",
            ),
            column("source", pa.string(), "Whose labels decided this row: human or judge."),
            column("agreement", pa.float64(), "Share of the counted labels that agree with the final direction."),
            column("n_labels", pa.int64(), "How many labels were counted."),
            column("id", pa.string(), "The item's id from the import."),
            column("model_chosen", pa.string(), "The model that wrote the chosen response (empty if unknown)."),
            column("model_rejected", pa.string(), "The model that wrote the rejected response (empty if unknown)."),
            *final_columns(ctx),
        ]
    )


def rows(item: Mapping, labels: Sequence[Label], final: FinalLabel, ctx: ExportContext) -> Iterator[dict]:
    if final.direction is None:
        return
    a = (item.get("response_a") or "", item.get("model_a") or "")
    b = (item.get("response_b") or "", item.get("model_b") or "")
    (chosen, model_chosen), (rejected, model_rejected) = (b, a) if final.direction > 0 else (a, b)
    yield {
        "prompt": prompt_value(item, ctx),
        "chosen": completion(chosen, ctx),
        "rejected": completion(rejected, ctx),
        "margin": abs(final.preference_strength or 0.0),
        "preference_strength": final.preference_strength,
        "source": final.source,
        "agreement": final.agreement,
        "n_labels": final.n_votes,
        "id": item["id"],
        "model_chosen": model_chosen,
        "model_rejected": model_rejected,
        **final_values(final, ctx),
    }
