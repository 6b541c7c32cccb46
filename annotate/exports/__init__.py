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

import importlib

# Where each name lives. Imported on first use (PEP 562), not here: `annotate.exports.options` is imported by
# every web process (forms, API), and importing this package must not load build's pandas and pyarrow.
_NAMES = {
    "FinalLabel": "aggregate",
    "aggregate_item": "aggregate",
    "aggregate_items": "aggregate",
    "FORMATS": "build",
    "ExportCounts": "build",
    "export_columns": "build",
    "export_dataset": "build",
    "export_paths": "build",
    "export_rows": "build",
    "export_splits": "build",
    "export_write": "build",
    "dataset_card": "card",
    "ExportOptions": "options",
    "ExportOptionsError": "options",
}

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


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
