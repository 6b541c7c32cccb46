"""Column mapping for item files whose layout we do not recognise: source column → item field (pure).

A mapping is `{target: source}` (`{"metadata": [sources]}` for metadata, which may take several
columns). The command line (`--map prompt=question`), the API (`mapping` JSON) and the import wizard
all go through `mapping_parse`; `mapping_apply` renames a row's columns before the row parser
(`item_row_parse`) sees it, so layout detection stays in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .errors import RowProblem
from .rows import _maybe_json

SINGLE_TARGETS = ("prompt", "response_a", "response_b", "response", "model_a", "model_b", "reference", "id")
TARGETS = (*SINGLE_TARGETS, "metadata")
REQUIRED_TARGETS = ("id", "prompt", "response_a", "response_b", "response")  # a row without its mapped column is bad

Mapping = dict[str, str | list[str]]


class MappingError(ValueError):
    """A mapping that cannot be used; the message says which entry and why."""


def _pairs(value: object) -> Iterable[tuple[object, object]]:
    if isinstance(value, dict):
        for target, source in value.items():
            if isinstance(source, list):
                for one in source:
                    yield target, one
            else:
                yield target, source
        return
    if isinstance(value, (list, tuple)):
        for entry in value:
            if not isinstance(entry, str) or "=" not in entry:
                raise MappingError(f"{entry!r} is not of the form field=column (e.g. prompt=question)")
            target, source = entry.split("=", 1)
            yield target.strip(), source.strip()
        return
    raise MappingError("a mapping is an object {field: column} or a list of 'field=column' entries")


def mapping_parse(value: object) -> Mapping:
    """A mapping from any of its spellings → the normal form, or MappingError.

    Accepts a dict (`{"prompt": "question", "metadata": ["topic", "source"]}`), a list of
    `field=column` strings (the command line's `--map`), JSON text of either, or None/"" for none.
    """
    if value is None or value == "" or value == {} or value == []:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MappingError(f"not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise MappingError("not valid JSON: nested too deeply") from None
    mapping: Mapping = {}
    used: dict[str, str] = {}  # source column -> the target it went to
    for target, source in _pairs(value):
        if target not in TARGETS:
            raise MappingError(f"{target!r} is not a field a column can go to; use one of {', '.join(TARGETS)}")
        if not isinstance(source, str) or not source.strip():
            raise MappingError(f"{target}: the column name must be a non-empty string")
        source = source.strip()
        if source in used:
            raise MappingError(f"column {source!r} is mapped twice ({used[source]} and {target})")
        used[source] = target
        if target == "metadata":
            mapping.setdefault("metadata", []).append(source)  # type: ignore[union-attr]
        elif target in mapping:
            raise MappingError(f"{target} is mapped twice ({mapping[target]!r} and {source!r})")
        else:
            mapping[target] = source
    return mapping


def mapping_sources(mapping: Mapping) -> dict[str, str]:
    """source column → target, for naming the column in a row's error."""
    out = {source: target for target, source in mapping.items() if isinstance(source, str)}
    out.update({source: "metadata" for source in mapping.get("metadata", [])})
    return out


def mapping_apply(row: object, mapping: Mapping) -> object:
    """The row with its mapped columns renamed to the item fields they stand for.

    A row lacking the column mapped to a required field (see REQUIRED_TARGETS) is a RowProblem.
    Columns the mapping does not name pass through unchanged (so they are still recognised or land
    in metadata). A column whose own name is a mapped target would be overwritten: it is kept under
    metadata instead, so a mapping never drops data.
    """
    if not mapping or not isinstance(row, dict):
        return row
    sources = mapping_sources(mapping)
    out = {key: value for key, value in row.items() if key not in sources and key not in mapping}
    metadata = {key: row[key] for key in mapping if key not in sources and key in row}
    for target, source in mapping.items():
        if target == "metadata":
            metadata.update({column: row[column] for column in source if column in row})
        elif source in row:
            out[target] = row[source]
        elif target in REQUIRED_TARGETS:
            raise RowProblem("missing", target)  # no falling back to another column the user did not name
    if "metadata" in mapping:
        out["metadata"] = metadata
    elif metadata:  # columns shadowed by a mapped target join the row's own metadata
        own = _maybe_json(out.get("metadata", {}), "metadata")
        if not isinstance(own, dict):
            raise RowProblem("must be a JSON object", "metadata")
        out["metadata"] = {**own, **metadata}
    return out


def mapping_field(field: str, mapping: Mapping) -> str:
    """An item field named in an error → that field and the column mapped to it, e.g. "prompt (column 'q')"."""
    if not mapping:
        return field
    base = field.split("[", 1)[0].split(".", 1)[0]
    source = mapping.get(base)
    if isinstance(source, str):
        return f"{field} (column {source!r})"
    return field
