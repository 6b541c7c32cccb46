"""MultiPref-style preference records (allenai/multipref) as routing_eval rows, with judge verdicts from a side file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Literal

OVERALL = "overall"

# MultiPref's five-point preference, matched without regard to case. "A-is-better" / "B-is-better" are the
# values of binarized exports (Hybrid Preferences' scripts accept them); they carry a direction, not a strength.
PREFERENCES = {
    "a-is-clearly-better": -2,
    "a-is-slightly-better": -1,
    "a-is-better": -1,
    "tie": 0,
    "b-is-better": 1,
    "b-is-slightly-better": 1,
    "b-is-clearly-better": 2,
}
# Per-aspect preferences of an annotation, named as in the `multipref` label-schema preset (annotate/schema.py).
ASPECTS = {"helpful_pref": "helpfulness", "truthful_pref": "truthfulness", "harmless_pref": "harmlessness"}
ANNOTATION_FIELDS = {"normal": "normal_worker_annotations", "expert": "expert_worker_annotations"}
POOLS = {"normal": ("normal",), "expert": ("expert",), "all": ("normal", "expert")}
# Item metadata kept as routing tags: the dataset card's fields, then the prompt tags of Hybrid Preferences'
# features files (features/*-features.jsonl), which some MultiPref-style exports merge into the records.
METADATA_FIELDS = (
    "source",
    "category",
    "subject_study",
    "highest_level_degree",
    "subject_of_expertise",
    "expertise_level",
    "safety_concern",
    "complexity_of_intents",
    "open_endedness",
    "format_constraints",
    "type_of_in_context_material",
    "languages",
)
# Field names: MultiPref's first, then the variants other exports use.
ID_FIELDS = ("comparison_id", "id")
PROMPT_FIELDS = ("text", "prompt")
RESPONSE_FIELDS = {"response_a": ("completion_a", "response_a"), "response_b": ("completion_b", "response_b")}
# A judge verdict carried in the record itself: Hybrid Preferences' features files hold GPT-4's as `pref_gpt4`.
JUDGE_PREFERENCE_FIELDS = {"pref_gpt4": "gpt4"}


def _preference(value: object, where: str, field: str) -> int:
    if isinstance(value, str) and value.strip().lower() in PREFERENCES:
        return PREFERENCES[value.strip().lower()]
    known = "A-is-clearly-better, A-is-slightly-better, Tie, B-is-slightly-better, B-is-clearly-better"
    raise ValueError(f"{where}, field {field!r}: unknown preference {value!r}; known: {known}")


def _first(record: Mapping, names: tuple[str, ...]) -> tuple[str, object]:
    for name in names:
        if record.get(name) is not None:
            return name, record[name]
    return names[0], None


def _parsed(entries: Iterable[str | Mapping], prefix: str = "") -> Iterable[tuple[str, Mapping]]:
    """(where, record) for each JSONL line (blank lines skipped) or already parsed record, numbered from 1."""
    for number, entry in enumerate(entries, start=1):
        if isinstance(entry, Mapping):
            yield f"{prefix}record {number}", entry
            continue
        if not entry.strip():
            continue
        where = f"{prefix}line {number}"
        try:
            parsed = json.loads(entry)
        except ValueError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from None
        if not isinstance(parsed, Mapping):
            raise ValueError(f"{where}: a JSON object is required")
        yield where, parsed


def _judge_label(value: object, where: str, field: str) -> dict[str, int] | None:
    """A judge's label: null (unparsable), {"overall": int, …}, or a MultiPref preference string."""
    if value is None:
        return None
    if isinstance(value, str):
        return {OVERALL: _preference(value, where, field)}
    if isinstance(value, Mapping) and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        if OVERALL in value:
            return dict(value)
    raise ValueError(f'{where}, field {field!r}: a label is null, {{"overall": int}} or a preference string')


def _judge_verdict(verdict: Mapping, where: str, field: str = "") -> dict:
    """One judge's verdict in the routing_eval `judge_labels` shape; `field` prefixes field names in errors."""
    judge = verdict.get("judge")
    if not isinstance(judge, str) or not judge:
        raise ValueError(f"{where}, field {field + 'judge'!r}: the judge's name (a string) is required")
    if "label" not in verdict:
        raise ValueError(f"{where}, field {field + 'label'!r}: required (null when the output did not parse)")
    out = {"judge": judge, "label": _judge_label(verdict["label"], where, field + "label")}
    if "label_swapped" in verdict:
        out["label_swapped"] = _judge_label(verdict["label_swapped"], where, field + "label_swapped")
    if verdict.get("raw") is not None:
        out["raw"] = str(verdict["raw"])
    if verdict.get("confidence") is not None:
        try:
            out["confidence"] = float(verdict["confidence"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}, field {field + 'confidence'!r}: a number is required") from None
    return out


def judge_verdicts(lines: Iterable[str | Mapping]) -> dict[str, list[dict]]:
    """Judge verdicts keyed by item id, from JSONL lines (or parsed records) such as
    `{"id": "…", "judge": "gpt-4o", "label": {"overall": -1} | null, "label_swapped": {"overall": 1} | null}`.

    `id` is the record's `comparison_id` (`comparison_id` and `external_id` are accepted as the key too);
    `label_swapped`, `raw` and `confidence` are optional, and a label may also be a MultiPref preference
    string ("A-is-slightly-better"). One verdict per judge and item: a repeated pair raises ValueError.
    """
    verdicts: dict[str, list[dict]] = {}
    for where, record in _parsed(lines, "judges "):
        _, item_id = _first(record, ("id", "comparison_id", "external_id"))
        if item_id is None:
            raise ValueError(f"{where}, field 'id': the item's id is required")
        verdict = _judge_verdict(record, where)
        judged = verdicts.setdefault(str(item_id), [])
        if any(v["judge"] == verdict["judge"] for v in judged):
            raise ValueError(f"{where}: a second verdict of judge {verdict['judge']!r} on item {item_id!r}")
        judged.append(verdict)
    return verdicts


def _metadata(record: Mapping) -> dict:
    """The record's tags: its `metadata` object, then METADATA_FIELDS; empty values and nested objects are left out."""
    metadata = dict(record["metadata"]) if isinstance(record.get("metadata"), Mapping) else {}
    for field in METADATA_FIELDS:
        value = record.get(field)
        if isinstance(value, list | tuple):
            value = [v for v in value if isinstance(v, str | int | float | bool) and v != ""]
        if value in (None, "", []) or isinstance(value, Mapping):
            continue
        metadata[field] = value
    return metadata


def _human_labels(record: Mapping, pools: tuple[str, ...], where: str) -> list[dict]:
    labels = []
    for pool in pools:
        field = ANNOTATION_FIELDS[pool]
        annotations = record.get(field)
        if not isinstance(annotations, list):
            raise ValueError(f"{where}, field {field!r}: a list of annotations is required")
        for index, annotation in enumerate(annotations):
            at = f"{field}[{index}]"
            if not isinstance(annotation, Mapping):
                raise ValueError(f"{where}, field {at!r}: an annotation object is required")
            label = {OVERALL: _preference(annotation.get("overall_pref"), where, f"{at}.overall_pref")}
            for source, aspect in ASPECTS.items():
                if annotation.get(source) not in (None, ""):
                    label[aspect] = _preference(annotation[source], where, f"{at}.{source}")
            evaluator = annotation.get("evaluator")
            name = f"{pool}:{evaluator}" if evaluator not in (None, "") else f"{pool}-{index}"
            labels.append({"annotator": name, "label": label})
    return labels


def _judge_labels(record: Mapping, supplied: list[dict], where: str) -> list[dict]:
    """The record's own verdicts (`judge_labels`, JUDGE_PREFERENCE_FIELDS), then those supplied for its id."""
    own = record.get("judge_labels")
    if own is not None and not isinstance(own, list):
        raise ValueError(f"{where}, field 'judge_labels': a list is required")
    labels: list[dict] = []
    for index, verdict in enumerate(own or []):
        if not isinstance(verdict, Mapping):
            raise ValueError(f"{where}, field 'judge_labels[{index}]': a verdict object is required")
        labels.append(_judge_verdict(verdict, where, f"judge_labels[{index}]."))
    for field, judge in JUDGE_PREFERENCE_FIELDS.items():
        if record.get(field) not in (None, ""):
            labels.append({"judge": judge, "label": {OVERALL: _preference(record[field], where, field)}})
    labels.extend(supplied)
    names = [label["judge"] for label in labels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{where}: more than one verdict of judge(s) {', '.join(map(repr, repeated))}")
    return labels


def multipref_rows(
    records: Iterable[str | Mapping],
    *,
    annotators: Literal["normal", "expert", "all"] = "normal",
    judges: Iterable[str | Mapping] | Mapping[str, list[dict]] | None = None,
) -> list[dict]:
    """MultiPref records as routing_eval rows: the pairwise item, human labels, judge labels.

    `records` are JSONL lines (blank ones skipped) or parsed records, each in MultiPref's shape:
    `comparison_id` (or `id`), `text` (or `prompt`), `completion_a` / `completion_b` (or `response_a` /
    `response_b`), `model_a` / `model_b`, the metadata fields of METADATA_FIELDS, and the annotation lists
    `normal_worker_annotations` and `expert_worker_annotations`, whose entries hold `evaluator` and
    `overall_pref` plus optional `helpful_pref`, `truthful_pref`, `harmless_pref`.

    Human labels come from the `annotators` pool (the normal crowdworkers, the experts, or all four):
    `overall_pref` on the −2..2 scale (A-is-clearly-better −2, A-is-slightly-better −1, Tie 0, …) and the
    aspects as helpfulness / truthfulness / harmlessness; the annotator is "<pool>:<evaluator>". Every field
    of the pool must be a list. Metadata fields become the row's `metadata`, so `metadata_tags` sees them
    (`prompt_id` is left out: as a tag it would give every prompt a column of its own).

    MultiPref has no judge verdicts. A record's own `judge_labels` list (routing_eval's shape) or its
    `pref_gpt4` preference (Hybrid Preferences' features files) are kept; `judges` adds verdicts by id,
    as JSONL lines or parsed records (`judge_verdicts`) or as the mapping it returns. A verdict for an id
    that no record has raises, as does a repeated id: a judges file that does not match the data is an
    error, not a run without judges. An item with no verdict gets an empty `judge_labels`, which
    routing_eval counts as the judges failing on it.

    Errors are ValueError naming the record ("line 3" for a JSONL line, "record 3" for a parsed one) and
    the field.
    """
    if annotators not in POOLS:
        raise ValueError(f"annotators: {annotators!r} is none of {', '.join(POOLS)}")
    by_id = judges if isinstance(judges, Mapping) else judge_verdicts(judges) if judges is not None else {}
    rows: list[dict] = []
    seen: set[str] = set()
    for where, record in _parsed(records):
        id_field, item_id = _first(record, ID_FIELDS)
        if item_id is None:
            raise ValueError(f"{where}, field {id_field!r}: the comparison's id is required")
        item_id = str(item_id)
        if item_id in seen:
            raise ValueError(f"{where}, field {id_field!r}: id {item_id!r} appears twice")
        seen.add(item_id)
        where = f"{where} ({id_field} {item_id!r})"
        item: dict = {"external_id": item_id}
        for key, names in (("prompt", PROMPT_FIELDS), *RESPONSE_FIELDS.items()):
            field, value = _first(record, names)
            if not (isinstance(value, str) or (key == "prompt" and isinstance(value, list))):
                raise ValueError(f"{where}, field {field!r}: text is required")
            item[key] = value
        for key in ("model_a", "model_b"):
            item[key] = str(record.get(key) or "")
        item["metadata"] = _metadata(record)
        item["human_labels"] = _human_labels(record, POOLS[annotators], where)

        item["judge_labels"] = _judge_labels(record, by_id.get(item_id, []), where)
        rows.append(item)
    unknown = sorted(set(by_id) - seen)
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise ValueError(f"judges: {len(unknown)} verdict id(s) match no record: {shown}")
    return rows
