"""The `ratings` format, HelpSteer2-style: one row per response, one column per rubric criterion (the mean score).

Columns: id, prompt, response, response_id, model, then one float column per criterion in the schema's
order, then source, n_labels, final_source ("mean", or "adjudicated" when a reviewer's label gives scores)
and adjudication_reason. On a rubric campaign each item has one row (response_id ""); on a campaign
of both kinds each item has two, for response A ("a", scored by `<criterion>_a`) and B ("b").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from annotate.exports.aggregate import FinalLabel, Label
from annotate.exports.context import ExportContext, column, final_columns, final_values, prompt_type, prompt_value

NAME = "ratings"
KINDS = ("rubric", "both")
PAIRWISE = False
FIXED = (
    "id",
    "prompt",
    "response",
    "response_id",
    "model",
    "source",
    "n_labels",
    "final_source",
    "adjudication_reason",
)


def criteria(ctx: ExportContext) -> list[dict]:
    found = ctx.schema["rubric"]["criteria"]
    clash = [c["name"] for c in found if c["name"] in FIXED]
    if clash:
        raise ValueError(f"criterion {clash[0]!r} has the name of a ratings column ({', '.join(FIXED)})")
    return found


def columns(ctx: ExportContext) -> pa.Schema:
    scored = [
        column(c["name"], pa.float64(), f"Mean {c['name']} score ({c['min']}–{c['max']}): {c['description']}".strip())
        for c in criteria(ctx)
    ]
    return pa.schema(
        [
            column("id", pa.string(), "The item's id from the import."),
            column("prompt", prompt_type(ctx), "The prompt: a list of chat messages {role, content}, or a string."),
            column("response", pa.string(), "The rated response."),
            column("response_id", pa.string(), '"a" or "b" on items with two responses, "" otherwise.'),
            column("model", pa.string(), "The model that wrote the response (empty if unknown)."),
            *scored,
            column("source", pa.string(), "Whose labels were averaged: human or judge."),
            column("n_labels", pa.int64(), "How many labels scored this response (the most over its criteria)."),
            *final_columns(ctx),
        ]
    )


def rows(item: Mapping, labels: Sequence[Label], final: FinalLabel, ctx: ExportContext) -> Iterator[dict]:
    names = [c["name"] for c in criteria(ctx)]
    if ctx.kind == "both":
        sides = [("a", item.get("response_a") or "", item.get("model_a") or "", "_a")]
        sides.append(("b", item.get("response_b") or "", item.get("model_b") or "", "_b"))
    else:
        # A rubric item has one response; its model, when the import named one, is in model_a.
        sides = [("", item.get("response") or "", item.get("model_a") or "", "")]
    for response_id, response, model, suffix in sides:
        n_labels = max(final.score_counts.get(name + suffix, 0) for name in names)
        reviewed = any((final.adjudication or {}).get("label", {}).get(name + suffix) is not None for name in names)
        if n_labels == 0 and not reviewed:
            continue
        row = {
            "id": item["id"],
            "prompt": prompt_value(item, ctx),
            "response": response,
            "response_id": response_id,
            "model": model,
        }
        row.update({name: final.scores.get(name + suffix) for name in names})
        row["source"] = final.source
        row["n_labels"] = n_labels
        # On a campaign of both kinds the item's pairwise winner may be adjudicated while these scores are means.
        row.update(final_values(final, ctx))
        row["final_source"] = "adjudicated" if reviewed else "mean"
        if not reviewed:
            row["adjudication_reason"] = ""
        yield row
