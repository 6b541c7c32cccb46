"""The `raw` format: one row per label, with where it came from, for anyone who wants to aggregate differently.

Columns: id, source, annotator, judge, judge_model, judge_prompt_version, label (a struct with one integer
field per schema key, null where the label gave none), justification, position_swapped, seconds,
parse_failed, confidence, created_at, routing_destination, routing_policy, routing_reason, routing_features
(what pushed the decision, as a JSON string), routing_decided_at. Join with another format on `id` for the
texts.

Which labels: the `source` option's ("human", "judge", or for "hybrid" both kinds, since raw rows are the
record and not a final label), inside the date range; judge parse failures are kept and flagged, because a
judge's failure rate is part of its provenance. Human labels that do not count (an excluded annotator's,
too-fast ones, qualification answers: annotate/services/quality/labels.py) are left out here too. A
reviewer's adjudication of a contested item is a row of its own (source "reviewer", the reason as its
justification, no name) when human labels are exported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import orjson
import pyarrow as pa

from annotate.exports.aggregate import FinalLabel, Label
from annotate.exports.context import ExportContext, column, timestamp_text

NAME = "raw"
KINDS = ("pairwise", "rubric", "both")
PAIRWISE = False


def columns(ctx: ExportContext) -> pa.Schema:
    label = pa.struct([pa.field(key.name, pa.int64()) for key in ctx.label_keys])
    return pa.schema(
        [
            column("id", pa.string(), "The item's id from the import."),
            column(
                "source", pa.string(), "human, judge, or reviewer (the adjudicated final label of a contested item)."
            ),
            column("annotator", pa.string(), "The annotator's stable pseudonym (human labels)."),
            column("judge", pa.string(), "The judge's name (judge labels)."),
            column("judge_model", pa.string(), "The judge's model."),
            column("judge_prompt_version", pa.string(), "The version of the judge's prompt template."),
            column(
                "label",
                label,
                "One integer per aspect or criterion, in the item's A/B orientation: pairwise negative = A better, "
                "0 = tie, positive = B better; rubric scores as given. Null where not given.",
            ),
            column("justification", pa.string(), "The rater's justification."),
            column("position_swapped", pa.bool_(), "True when response B was shown first (left); null if unknown."),
            column("seconds", pa.float64(), "Time on task in seconds (human labels)."),
            column("parse_failed", pa.bool_(), "True when the judge's output could not be parsed (label empty)."),
            column("confidence", pa.float64(), "The rater's or judge's stated confidence, when asked."),
            column("created_at", pa.string(), "When the label was made (ISO 8601, UTC, microseconds)."),
            column("routing_destination", pa.string(), "Where routing sent the item: human, llm or both."),
            column("routing_policy", pa.string(), "The routing policy that decided."),
            column("routing_reason", pa.string(), "The policy's reason for this item."),
            column(
                "routing_features",
                pa.string(),
                "What pushed the decision, largest first, as JSON: the learned policy's signed contributions "
                '[{"feature", "value", "contribution"}], the judge-uncertainty signals [{"signal", "weight"}]; '
                "null where the policy reads no feature.",
            ),
            column("routing_decided_at", pa.string(), "When routing decided (ISO 8601, UTC, microseconds)."),
        ]
    )


def rows(item: Mapping, labels: Sequence[Label], final: FinalLabel, ctx: ExportContext) -> Iterator[dict]:
    keys = [key.name for key in ctx.label_keys]
    routing = item.get("routing") or {}
    decided_at = timestamp_text(routing.get("decided_at"))
    features = routing.get("features")
    features_text = None if features is None else orjson.dumps(features).decode()
    source = ctx.options.source
    for label in labels:
        if source != "hybrid" and label.get("source") != source:
            continue
        judge = label.get("judge") or {}
        values = label.get("label") or {}
        confidence = label.get("confidence")
        seconds = label.get("seconds")
        yield {
            "id": item["id"],
            "source": label.get("source"),
            "annotator": label.get("annotator"),
            "judge": judge.get("name"),
            "judge_model": judge.get("model"),
            "judge_prompt_version": judge.get("prompt_version"),
            "label": {key: values.get(key) for key in keys},
            "justification": label.get("justification") or "",
            "position_swapped": label.get("position_swapped"),
            "seconds": None if seconds is None else float(seconds),
            "parse_failed": bool(label.get("parse_failed")),
            "confidence": None if confidence is None else float(confidence),
            "created_at": timestamp_text(label.get("created_at")),
            "routing_destination": routing.get("destination"),
            "routing_policy": routing.get("policy"),
            "routing_reason": routing.get("reason"),
            "routing_features": features_text,
            "routing_decided_at": decided_at,
        }
    review = final.adjudication
    if review is not None and source in ("human", "hybrid"):
        values = review.get("label") or {}
        yield {
            "id": item["id"],
            "source": "reviewer",
            "annotator": None,
            "judge": None,
            "judge_model": None,
            "judge_prompt_version": None,
            "label": {key: values.get(key) for key in keys},
            "justification": review.get("reason") or "",
            "position_swapped": None,
            "seconds": None,
            "parse_failed": False,
            "confidence": None,
            "created_at": timestamp_text(review.get("adjudicated_at")),
            "routing_destination": routing.get("destination"),
            "routing_policy": routing.get("policy"),
            "routing_reason": routing.get("reason"),
            "routing_features": features_text,
            "routing_decided_at": decided_at,
        }
