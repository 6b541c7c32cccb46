"""What an export is asked for: `ExportOptions`, validated on construction, with errors that name the option."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

FORMATS = ("trl", "ratings", "helpsteer2-preference", "raw")
FILE_TYPES = ("jsonl", "parquet", "csv")
SOURCES = ("human", "judge", "hybrid")
TIES = ("drop", "split")
AGGREGATIONS = ("majority", "dawid_skene")
EXTENSIONS = {"jsonl": "jsonl", "parquet": "parquet", "csv": "csv"}

MetadataFilter = tuple[tuple[str, tuple[Any, ...]], ...]


class ExportOptionsError(ValueError):
    """An option that cannot be used; `field` names it (as in the API's and the command's input)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _as_datetime(name: str, value: object) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string; naive ones are taken as UTC, like label times."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ExportOptionsError(name, f"{value!r} is not an ISO 8601 date or time") from None
    if not isinstance(value, datetime):
        raise ExportOptionsError(name, "must be an ISO 8601 string or a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _metadata_filter(value: object) -> MetadataFilter:
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ExportOptionsError("metadata", "must map a metadata key to a value or a list of values")
    pairs = []
    for key, wanted in value.items():
        if not isinstance(key, str) or not key:
            raise ExportOptionsError("metadata", f"key {key!r} must be a non-empty string")
        values = tuple(wanted) if isinstance(wanted, (list, tuple)) else (wanted,)
        if not values:
            raise ExportOptionsError(f"metadata.{key}", "an empty list of values would match no item")
        bad = [v for v in values if not _is_scalar(v)]
        if bad:
            raise ExportOptionsError(f"metadata.{key}", f"{bad[0]!r} is not a string, number, boolean or null")
        pairs.append((key, values))
    # Sorted so that two equal filters given in another order are equal options (and hash alike).
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class ExportOptions:
    """One export's options. Construct it with keywords (or `from_dict` for API/JSON input); invalid values
    raise ExportOptionsError naming the option.

    format: trl | ratings | helpsteer2-preference | raw.
    file_type: jsonl | parquet | csv.
    source: whose labels make the final label: human, judge (parse failures excluded), or hybrid (the human
      labels where the item has any, else the judges').
    min_agreement: drop items whose share of labels agreeing with the final pairwise direction is below it.
    ties: "split" writes items whose final label is a tie to a split of their own, "drop" leaves them out
      (trl and helpsteer2-preference; ratings and raw rows have no winner and ignore it).
    metadata: {key: value or [values]}: keep items whose metadata[key] is one of the values (or, when the
      item's value is a list such as tags, contains one of them); every key must match.
    created_from, created_to: only labels created in [created_from, created_to) count; naive times are UTC.
    test_fraction: the share of prompts in the "test" split, chosen by a hash of the prompt text, so that a
      prompt is never in both splits and the same prompt lands in the same split in every export.
    aggregation: how the pairwise winner is decided from the counted labels: "majority" (the strict majority
      of their directions) or "dawid_skene" (Dawid & Skene's EM, which weighs each rater by their estimated
      confusion matrix; trl and helpsteer2-preference). An adjudicated item's reviewer label wins either way.
    soft_labels: add a `soft_labels` column, the counted labels' vote distribution over the `overall` scale
      (trl and helpsteer2-preference).
    """

    format: str = "trl"
    file_type: str = "jsonl"
    source: str = "hybrid"
    min_agreement: float | None = None
    ties: str = "split"
    metadata: MetadataFilter = field(default=())
    created_from: datetime | None = None
    created_to: datetime | None = None
    test_fraction: float = 0.0
    aggregation: str = "majority"
    soft_labels: bool = False

    def __post_init__(self) -> None:
        choices = (
            ("format", FORMATS), ("file_type", FILE_TYPES), ("source", SOURCES), ("ties", TIES),
            ("aggregation", AGGREGATIONS),
        )  # fmt: skip
        for name, allowed in choices:
            value = getattr(self, name)
            if value not in allowed:
                raise ExportOptionsError(name, f"{value!r} is not one of {', '.join(allowed)}")
        if self.min_agreement is not None:
            if not _is_number(self.min_agreement) or not 0.0 <= self.min_agreement <= 1.0:
                raise ExportOptionsError("min_agreement", f"{self.min_agreement!r} must be a number from 0 to 1")
            object.__setattr__(self, "min_agreement", float(self.min_agreement))
        if not _is_number(self.test_fraction) or not 0.0 <= self.test_fraction < 1.0:
            raise ExportOptionsError("test_fraction", f"{self.test_fraction!r} must be a number in [0, 1)")
        object.__setattr__(self, "test_fraction", float(self.test_fraction))
        if not isinstance(self.soft_labels, bool):
            raise ExportOptionsError("soft_labels", f"{self.soft_labels!r} must be true or false")
        object.__setattr__(self, "metadata", _metadata_filter(self.metadata))
        created_from = _as_datetime("created_from", self.created_from)
        created_to = _as_datetime("created_to", self.created_to)
        if created_from is not None and created_to is not None and created_from >= created_to:
            raise ExportOptionsError("created_to", "must be later than created_from")
        object.__setattr__(self, "created_from", created_from)
        object.__setattr__(self, "created_to", created_to)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportOptions:
        """Options from JSON-like input (API body, job parameters); unknown keys are errors, not ignored."""
        if not isinstance(data, Mapping):
            raise ExportOptionsError("options", "must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ExportOptionsError(unknown[0], f"unknown option; the options are {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and accepted back by `from_dict`: what a job stores and the dataset card shows."""
        return {
            "format": self.format,
            "file_type": self.file_type,
            "source": self.source,
            "min_agreement": self.min_agreement,
            "ties": self.ties,
            "metadata": {key: list(values) if len(values) > 1 else values[0] for key, values in self.metadata},
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "test_fraction": self.test_fraction,
            "aggregation": self.aggregation,
            "soft_labels": self.soft_labels,
        }

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.file_type]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
