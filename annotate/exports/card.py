"""The dataset card: `README.md` with the YAML header the Hugging Face Hub reads, and the provenance an ML
engineer needs before training on the data (schema and signs, who labelled, which labels are LLM judges',
routing, agreement, how ties and disagreements were handled).

`dataset_card` takes plain data, so the caller passes what it read from the database as `facts`:

    name, description: str            pretty name and a paragraph about the data
    license: str                      a Hub licence id ("apache-2.0", "cc-by-4.0", ...); default "other"
    language: list[str]               ISO codes, e.g. ["en"]
    guidelines_version: str           e.g. the SHA-256 of the guidelines Markdown, or a date
    guidelines: str                   the guidelines text (quoted in the card when given)
    annotator_pools: [{"name", "annotators", "labels", "description"}]
    judges: [{"name", "model", "prompt_version", "labels"}]   the campaign's judges
    swap_policy: str                  how judges saw the two orders, e.g. "both orders; a flipped verdict ..."
    routing: {"policy", "params": dict, "human_budget": int | None, "decisions": {"human": n, "llm": n, "both": n}}
    agreement_computed_at: str        when the agreement snapshot was computed
    gold_accuracy: {"threshold", "gold_items", "humans": {"answered", "correct", "accuracy", "n_annotators",
                    "counted": {...the same}}, "judges": [{"name", "answered", "correct", "accuracy", "qualified",
                    "reason", "orders": {"consistency", ...}}], "llm_only": {"allowed", "reason"}}
                                      humans and judges on the same gold items
                                      (annotate/services/quality/gold.py `gold_accuracy`); no person is named

Missing facts are left out of the card, never invented. `agreement` is the `criteria` mapping of a
statistics snapshot ({criterion: agreement_report(...)}, over human labels).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from annotate.exports.aggregate import RULES
from annotate.exports.options import ExportOptions

if TYPE_CHECKING:
    import pyarrow as pa

CARD_NAME = "README.md"  # the card's file name in an export's directory (the Hugging Face Hub reads it)

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)
FORMAT_TAGS = {
    "trl": ["preference", "dpo", "reward-modeling", "trl"],
    "helpsteer2-preference": ["preference", "helpsteer2-preference", "reward-modeling"],
    "ratings": ["ratings", "rubric", "helpsteer2"],
    "raw": ["annotations", "provenance"],
}
FORMAT_TASKS = {
    "trl": ["text-generation"],
    "helpsteer2-preference": ["text-generation"],
    "ratings": ["text-classification"],
    "raw": ["text-classification"],
}
LOADERS = {"jsonl": "json", "parquet": "parquet", "csv": "csv"}
CSV_FORMULA_NOTE = (
    "Text cells that begin with `=`, `+`, `-`, `@`, a tab or a carriage return start with an added `'` so that "
    "a spreadsheet shows them instead of running them as formulas (OWASP's CSV-injection rule); remove it to "
    "get the exact text, which the JSONL and Parquet exports keep."
)


def size_category(n: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell: untrusted names and reasons must not break the table."""
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def card_header(*, facts: Mapping[str, Any], options: ExportOptions, result: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML front matter as a dict: licence, task categories, tags, size, and one config whose data_files
    list every split with rows (the Hub cannot load an empty JSONL file); no config when nothing has rows."""
    counts = result.get("counts", {})
    labels = counts.get("labels", {})
    tags = ["tandem", *FORMAT_TAGS[options.format]]
    if labels.get("human"):
        tags.append("human-feedback")
    if labels.get("judge"):
        tags.append("llm-as-a-judge")
    splits = [{"split": split, "path": info["file"]} for split, info in result["splits"].items() if info["rows"] > 0]
    header: dict[str, Any] = {
        "license": facts.get("license") or "other",
        "pretty_name": facts.get("name") or "Tandem export",
    }
    if facts.get("language"):
        header["language"] = list(facts["language"])
    header["task_categories"] = FORMAT_TASKS[options.format]
    header["tags"] = tags
    header["size_categories"] = [size_category(int(result["rows"]))]
    if splits:  # the Hub refuses a config without data files
        header["configs"] = [{"config_name": "default", "data_files": splits}]
    return header


def _type_name(type_: pa.DataType) -> str:
    import pyarrow as pa  # here: services/exports.py imports this module for CARD_NAME in every web process

    if pa.types.is_list(type_) and pa.types.is_struct(type_.value_type):
        fields = ", ".join(f"{f.name}: {_type_name(f.type)}" for f in type_.value_type)
        return f"list of {{{fields}}}"
    if pa.types.is_struct(type_):
        return "{" + ", ".join(f"{f.name}: {_type_name(f.type)}" for f in type_) + "}"
    return str(type_)


def _description(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"description", b"").decode()


def _schema_section(schema: dict, kind: str, facts: Mapping[str, Any]) -> list[str]:
    out = ["## Label schema", ""]
    if kind in ("pairwise", "both"):
        rows = [
            (a["name"], f"−{a['scale']}…{a['scale']}", "yes" if a["allow_tie"] else "no", a.get("description"))
            for a in schema["pairwise"]["aspects"]
        ]
        out += ["Pairwise aspects (negative = response A better, 0 = tie, positive = response B better):", ""]
        out += [_table(["aspect", "scale", "ties allowed", "question"], rows), ""]
    if kind in ("rubric", "both"):
        rows = [(c["name"], f"{c['min']}–{c['max']}", c.get("description")) for c in schema["rubric"]["criteria"]]
        per_response = " (rated for each response: `<criterion>_a`, `<criterion>_b`)" if kind == "both" else ""
        out += [f"Rubric criteria{per_response}:", "", _table(["criterion", "scores", "description"], rows), ""]
    out.append(f"Justification: {schema.get('justification', 'optional')}.")
    if facts.get("guidelines_version"):
        out.append(f"Guidelines version: `{facts['guidelines_version']}`.")
    if facts.get("guidelines"):
        out += ["", "<details><summary>Guidelines</summary>", "", str(facts["guidelines"]).strip(), "", "</details>"]
    return [*out, ""]


def _people_sections(facts: Mapping[str, Any], counts: Mapping[str, Any]) -> list[str]:
    labels = counts.get("labels", {})
    finals = counts.get("finals", {})
    out = ["## Annotators", ""]
    pools = facts.get("annotator_pools") or []
    if pools:
        rows = [(p.get("name"), p.get("annotators"), p.get("labels"), p.get("description")) for p in pools]
        out += [_table(["pool", "annotators", "labels", "description"], rows), ""]
    out += [
        "Annotators appear under stable pseudonyms, never account names. "
        f"Human labels behind this export: {labels.get('human', 0)}.",
        "",
        "## Labels from LLM judges",
        "",
        f"Judge labels behind this export: {labels.get('judge', 0)}."
        + (
            f" Items whose final label came from judges: {finals.get('judge', 0)} (from humans: "
            f"{finals.get('human', 0)})."
            if finals
            else ""
        ),
        "",
    ]
    used = counts.get("judges") or []
    if used:
        rows = [(j["name"], j["model"], j["prompt_version"], j["labels"]) for j in used]
        table = _table(["judge", "model", "prompt version", "labels"], rows)
        out += ["Judge labels in this export, by judge:", "", table, ""]
    judges = facts.get("judges") or []
    if judges:
        rows = [(j.get("name"), j.get("model"), j.get("prompt_version"), j.get("labels")) for j in judges]
        out += ["The campaign's judges:", "", _table(["judge", "model", "prompt version", "labels"], rows), ""]
    if facts.get("swap_policy"):
        out += [f"Order of the responses shown to judges: {facts['swap_policy']}", ""]
    return out


def _routing_section(facts: Mapping[str, Any]) -> list[str]:
    routing = facts.get("routing")
    if not routing:
        return []
    out = ["## Routing", "", f"Policy: `{routing.get('policy')}`."]
    if routing.get("params"):
        out.append(f"Parameters: `{json.dumps(routing['params'], sort_keys=True)}`.")
    if routing.get("human_budget") is not None:
        out.append(f"Human budget: {routing['human_budget']} items.")
    decisions = routing.get("decisions") or {}
    if decisions:
        out += ["", _table(["destination", "items"], sorted(decisions.items()))]
    return [*out, ""]


def _with_interval(value: object, interval: Sequence[float] | None) -> str:
    shown = _cell(value)
    if value is not None and interval:
        shown += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return shown


def _agreement_section(agreement: Mapping[str, Mapping[str, Any]], facts: Mapping[str, Any]) -> list[str]:
    out = ["## Agreement", ""]
    if not agreement:
        return [*out, "No agreement snapshot was given for this export.", ""]
    when = f", computed {facts['agreement_computed_at']}" if facts.get("agreement_computed_at") else ""
    out += [f"Between the human annotators whose labels count, per criterion, over the whole campaign{when}:", ""]
    rows, notes = [], []
    for name, report in agreement.items():
        alphas = report.get("krippendorff_alpha") or {}
        intervals = report.get("ci95") or {}
        level = "ordinal" if alphas.get("ordinal") is not None else "nominal"
        rows.append(
            (
                name,
                report.get("n_items_multi"),
                f"{_with_interval(alphas.get(level), intervals.get(f'krippendorff_alpha_{level}'))} ({level})",
                _with_interval(report.get("fleiss_kappa"), intervals.get("fleiss_kappa")),
                _with_interval(report.get("cohen_kappa_mean"), intervals.get("cohen_kappa_mean")),
                _with_interval(report.get("gwet_ac1"), intervals.get("gwet_ac1")),
                report.get("percent_agreement"),
            )
        )
        notes += [f"{name}: {note}" for note in report.get("notes") or []]
    headers = ["criterion", "items with ≥2 labels", "Krippendorff's α [95% CI]", "Fleiss' κ [95% CI]"]
    out += [_table([*headers, "Cohen's κ (mean) [95% CI]", "Gwet's AC1 [95% CI]", "% agreement"], rows), ""]
    out += [
        "Intervals: percentile bootstrap over items (one seed for every figure); a figure without an estimate "
        "has none.",
        "",
    ]
    if notes:
        out += ["Notes:", "", *[f"- {_cell(note)}" for note in notes], ""]
    return out


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _gold_section(facts: Mapping[str, Any]) -> list[str]:
    gold = facts.get("gold_accuracy")
    if not gold:
        return []
    out = ["## Gold accuracy: humans and judges", ""]
    out.append(
        f"On the campaign's {gold.get('gold_items', 0)} gold items, humans and judges are held to one standard: "
        "an answer is right when it matches the gold label (pairwise aspects by side, rubric scores exactly); "
        "judges are asked in both orders and every judgment counts."
    )
    out.append("")
    humans = gold.get("humans") or {}
    counted = humans.get("counted") or {}
    rows = [
        ("humans (all)", humans.get("n_annotators"), humans.get("answered"), _percent(humans.get("accuracy")), "–"),
        (
            "humans whose labels count",
            counted.get("n_annotators"),
            counted.get("answered"),
            _percent(counted.get("accuracy")),
            "–",
        ),
    ]
    for judge in gold.get("judges") or []:
        consistency = (judge.get("orders") or {}).get("consistency")
        qualified = "yes" if judge.get("qualified") else "no"
        rows.append(
            (f"judge {judge.get('name')} (qualified: {qualified})", 1, judge.get("answered"),
             _percent(judge.get("accuracy")), _percent(consistency))
        )  # fmt: skip
    out += [_table(["who", "raters", "answers", "gold accuracy", "same outcome in both orders"], rows), ""]
    threshold = gold.get("threshold")
    if threshold is not None:
        llm_only = gold.get("llm_only") or {}
        verdict = "may" if llm_only.get("allowed") else "may not"
        out += [
            f"Judges need {threshold:.0%} gold accuracy before items go to them alone; items {verdict} be routed "
            f"to the judges alone: {_cell(llm_only.get('reason', ''))}.",
            "",
        ]
    return out


def _aggregation_line(options: ExportOptions, aggregation: Mapping[str, Any]) -> str:
    if options.aggregation == "majority":
        return "Pairwise winner: the strict majority of the counted labels' directions."
    fitted = aggregation or {}
    line = (
        f"Pairwise winner: Dawid–Skene (method `{fitted.get('method', 'dawid_skene')}`, {fitted.get('raters', 0)} "
        f"raters, {fitted.get('n_iter', 0)} EM rounds, converged: {'yes' if fitted.get('converged', True) else 'no'})."
    )
    notes = "; ".join(fitted.get("notes") or [])
    return line + (f" {_cell(notes)}." if notes else "")


def _handling_section(options: ExportOptions, counts: Mapping[str, Any], aggregation: Mapping[str, Any]) -> list[str]:
    dropped = counts.get("dropped", {})
    finals = counts.get("final_sources", {})
    if options.format in ("trl", "helpsteer2-preference"):
        where = "go to the `ties` split" if options.ties == "split" else "are dropped"
        ties = f"Ties {where}: {counts.get('ties', 0)} exported, {dropped.get('ties', 0)} dropped."
        undecided = (
            f"Items without a strict majority (undecided) are left out: {dropped.get('no_majority', 0)}. "
            "The statistics' hybrid leaderboard leaves them out too."
        )
    else:
        ties = f"The `{options.format}` format has no winner per row, so ties stay in place."
        undecided = f"The `{options.format}` format has no winner per row: items without a majority stay in place."
    agreement = (
        f"Items whose agreement is below {options.min_agreement} are dropped (adjudicated items excepted): "
        f"{dropped.get('min_agreement', 0)}."
        if options.min_agreement is not None
        else "No minimum agreement: disagreement is kept, and measured per row in `agreement` where there is one."
    )
    split = (
        f"`test` holds about {options.test_fraction:.0%} of the prompts, chosen by the SHA-256 of the prompt text, "
        "so no prompt is in both train and test and a prompt keeps its split across exports."
        if options.test_fraction > 0
        else "There is no test split."
    )
    decided = ", ".join(f"{name}: {n}" for name, n in sorted(finals.items())) or "none"
    return [
        "## Ties and disagreements",
        "",
        f"Final labels are aggregated from the `{options.source}` labels, by these rules:",
        "",
        RULES.strip(),
        "",
        f"- {_aggregation_line(options, aggregation)}",
        f"- {ties}",
        f"- {undecided}",
        f"- Final labels by how they were decided: {decided}. Adjudicated items: {finals.get('adjudicated', 0)}.",
        f"- {agreement}",
        f"- {split}",
        f"- Human labels that do not count: {dropped.get('excluded_annotator', 0)} from annotators an admin "
        f"excluded, {dropped.get('too_fast', 0)} submitted faster than the campaign's minimum time, "
        f"{dropped.get('qualification', 0)} qualification-round answers.",
        f"- Items read: {counts.get('items', 0)}; exported: {counts.get('items_exported', 0)}; left out by the "
        f"metadata filter: {dropped.get('metadata', 0)}; without a label this export counts: "
        f"{dropped.get('no_labels', 0)}; labels outside the date range: {counts.get('labels_outside_dates', 0)}.",
        "",
    ]


def dataset_card(
    *,
    facts: Mapping[str, Any],
    schema: dict,
    kind: str,
    options: ExportOptions,
    columns: pa.Schema,
    result: Mapping[str, Any],
    agreement: Mapping[str, Mapping[str, Any]],
) -> str:
    """The card's Markdown. `result` is `export_write`'s result with "counts" (`ExportCounts.to_dict()`)."""
    header = card_header(facts=facts, options=options, result=result)
    counts = result.get("counts", {})
    name = header["pretty_name"]
    files = [(split, info["file"], info["rows"], info["sha256"]) for split, info in result["splits"].items()]
    loader = LOADERS[options.file_type]
    data_files = {split: info["file"] for split, info in result["splits"].items() if info["rows"] > 0}
    body = [
        f"# {name}",
        "",
        *([str(facts["description"]).strip(), ""] if facts.get("description") else []),
        f"Exported by Tandem in the `{options.format}` format as {options.file_type.upper()}, from a `{kind}` "
        "campaign.",
        "",
        *([CSV_FORMULA_NOTE, ""] if options.file_type == "csv" else []),
        "## Files",
        "",
        _table(["split", "file", "rows", "sha256"], files),
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f"dataset = load_dataset({loader!r}, data_files={data_files!r})",
        "```",
        "",
        "## Columns",
        "",
        _table(["column", "type", "meaning"], [(f.name, _type_name(f.type), _description(f)) for f in columns]),
        "",
        "Sign convention: pairwise values are relative to the item's own responses A and B, whatever order an "
        "annotator or judge saw them in: negative = A better, 0 = tie, positive = B better "
        "(HelpSteer2-Preference's convention, where response 1 is A and response 2 is B).",
        "",
        *_schema_section(schema, kind, facts),
        *_people_sections(facts, counts),
        *_routing_section(facts),
        *_agreement_section(agreement, facts),
        *_gold_section(facts),
        *_handling_section(options, counts, result.get("aggregation") or {}),
        "## Export options",
        "",
        "```json",
        json.dumps(options.to_dict(), indent=2, sort_keys=True),
        "```",
        "",
    ]
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "---\n" + front + "---\n\n" + "\n".join(body)
