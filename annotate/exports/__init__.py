"""Training-ready dataset exports from plain data: aggregation, one module per format, streaming writers, the card.

Nothing here touches the database. The caller hands over, per item, a dict and its labels:

    item:  {"id": external id, "prompt": str | [{"role", "content"}], "response_a", "response_b", "model_a",
            "model_b", "response" (rubric), "reference", "metadata": dict, "gold_label": dict | None,
            "routing": {"destination", "policy", "reason", "features", "decided_at"} | None}
    label: {"item": item id, "source": "human" | "judge", "annotator": pseudonym | None,
            "judge": {"name", "model", "prompt_version"} | None, "label": {key: int} in the item's A/B
            orientation, "justification", "position_swapped": bool | None, "seconds": float | None,
            "parse_failed": bool, "confidence": float | None, "created_at": ISO 8601 str}

where `routing` is the item's latest routing decision and its `features` what pushed it, largest first:
`[{"feature", "value", "contribution"}]` (the learned policy's signed contributions to the log-odds),
`[{"signal", "weight"}]` (the judge-uncertainty signals that fired), or None (policies that read no feature).

`build.export_dataset` (or `export_rows` + `export_write` + `card.dataset_card`) does the rest.
"""

from annotate.exports.aggregate import FinalLabel, aggregate_item, aggregate_items
from annotate.exports.build import (
    FORMATS,
    ExportCounts,
    export_columns,
    export_dataset,
    export_paths,
    export_rows,
    export_splits,
    export_write,
)
from annotate.exports.card import dataset_card
from annotate.exports.options import ExportOptions, ExportOptionsError

__all__ = [
    "FORMATS",
    "ExportCounts",
    "ExportOptions",
    "ExportOptionsError",
    "FinalLabel",
    "aggregate_item",
    "aggregate_items",
    "dataset_card",
    "export_columns",
    "export_dataset",
    "export_paths",
    "export_rows",
    "export_splits",
    "export_write",
]
