"""Every format in every file type loads with Hugging Face `datasets` and gives back the rows that were exported;
the dataset card's YAML parses, lists the splits, and is what `load_dataset(directory)` follows."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before `datasets` reads its configuration: local files only

import datasets
import numpy as np
import pyarrow as pa
import pytest
import yaml

from annotate.exports import ExportOptions, export_columns, export_dataset, export_rows
from annotate.stats.agreement import agreement_report

from . import campaign

FILE_TYPES = ("jsonl", "parquet", "csv")
FORMATS = (("trl", "pairwise"), ("helpsteer2-preference", "pairwise"), ("ratings", "both"), ("raw", "both"))
LOADERS = {"jsonl": "json", "parquet": "parquet", "csv": "csv"}
FACTS = {
    "name": "Tandem test | campaign",
    "description": "Synthetic labels for the export tests.",
    "license": "apache-2.0",
    "language": ["en"],
    "guidelines_version": "sha256:abc123",
    "annotator_pools": [{"name": "staff", "annotators": 3, "labels": 40, "description": "in-house | paid"}],
    "judges": [{"name": "judge-2", "model": "llama-70b", "prompt_version": "v2", "labels": 50}],
    "swap_policy": "every judge rates both orders; a verdict that flips is kept as two labels",
    "routing": {
        "policy": "judge_uncertainty",
        "params": {"calibration": 0.05},
        "human_budget": 20,
        "decisions": {"human": 10, "llm": 10, "both": 10},
    },
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each format × file type exported once, with its expected rows per split and its card."""
    datasets.disable_progress_bars()
    matrix = np.array([[1, 1, 2], [0, 0, 1], [-1, -1, -1], [2, 1, 2], [-2, -2, np.nan]], dtype=float)
    agreement = {"overall": agreement_report(matrix, domain=[-2, -1, 0, 1, 2], ordinal=True, bootstrap=30)}
    out = {}
    for fmt, kind in FORMATS:
        schema, pairs = campaign(30, kind=kind, seed=11)
        for file_type in FILE_TYPES:
            options = ExportOptions(format=fmt, file_type=file_type, test_fraction=0.3)
            directory = tmp_path_factory.mktemp(f"{fmt}-{file_type}")
            result = export_dataset(
                pairs,
                schema=schema,
                kind=kind,
                options=options,
                directory=directory,
                stem="tandem",
                conversational=True,
                facts=FACTS,
                agreement=agreement,
            )
            expected: dict[str, list] = {}
            for split, row in export_rows(pairs, schema=schema, kind=kind, options=options, conversational=True):
                expected.setdefault(split, []).append(row)
            columns = export_columns(schema=schema, kind=kind, options=options, conversational=True)
            out[fmt, file_type] = (directory, result, expected, columns)
    return out, tmp_path_factory.mktemp("hf-cache")


def load(directory, result, file_type, cache):
    files = {split: str(directory / info["file"]) for split, info in result["splits"].items() if info["rows"]}
    return datasets.load_dataset(LOADERS[file_type], data_files=files, cache_dir=str(cache))


def from_csv(value, type_: pa.DataType):
    """A CSV cell as `datasets` read it, back to the exported value (nested values are JSON in the cell)."""
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return None
    if pa.types.is_list(type_) or pa.types.is_struct(type_):
        return json.loads(value)
    if pa.types.is_floating(type_):
        return float(value)
    if pa.types.is_integer(type_):
        return int(value)
    return value


@pytest.mark.parametrize("file_type", FILE_TYPES)
@pytest.mark.parametrize("fmt", [fmt for fmt, _ in FORMATS])
def test_loads_with_datasets_and_round_trips(exported, fmt, file_type):
    out, cache = exported
    directory, result, expected, columns = out[fmt, file_type]
    loaded = load(directory, result, file_type, cache)
    assert set(loaded) == set(expected) and len(expected) >= 2
    for split, rows in expected.items():
        got = loaded[split].to_list()
        assert len(got) == len(rows) == result["splits"][split]["rows"]
        if file_type == "csv":
            got = [{c.name: from_csv(row[c.name], c.type) for c in columns} for row in got]
            rows = [{c.name: None if row[c.name] == "" else row[c.name] for c in columns} for row in rows]
        assert got == rows, split
        if "prompt" in columns.names and file_type != "csv":
            assert all(isinstance(row["prompt"], list) and row["prompt"][-1]["role"] == "user" for row in got)


def test_trl_export_is_what_trl_expects(exported):
    out, cache = exported
    directory, result, _, _ = out["trl", "parquet"]
    train = load(directory, result, "parquet", cache)["train"]
    features = train.features
    assert [m["role"] for m in train[0]["chosen"]] == ["assistant"]
    assert features["margin"].dtype == "float64" and features["n_labels"].dtype == "int64"
    assert all(margin >= 0 for margin in train["margin"])
    assert {s for s in train["source"]} <= {"human", "judge"}


@pytest.mark.parametrize("fmt", ["trl", "raw"])
def test_card_yaml_lists_the_splits_and_the_hub_layout_loads(exported, fmt):
    out, cache = exported
    directory, result, _, _ = out[fmt, "parquet"]
    text = (directory / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    assert header["license"] == "apache-2.0" and header["language"] == ["en"]
    assert header["size_categories"] == ["n<1K"] and header["task_categories"]
    assert "llm-as-a-judge" in header["tags"] and "human-feedback" in header["tags"]
    (config,) = header["configs"]
    non_empty = {split: info["file"] for split, info in result["splits"].items() if info["rows"]}
    assert {f["split"]: f["path"] for f in config["data_files"]} == non_empty
    # What the Hub does with a dataset repository: read the card's configs, load the files they name.
    by_card = datasets.load_dataset(str(directory), cache_dir=str(cache))
    assert {split: by_card[split].num_rows for split in by_card} == {s: result["splits"][s]["rows"] for s in non_empty}


def test_card_states_provenance_conventions_and_agreement(exported):
    out, _ = exported
    directory, result, _, _ = out["trl", "jsonl"]
    text = (directory / "README.md").read_text()
    counts = result["counts"]
    for needed in (
        "negative = A better",
        "sha256:abc123",  # guidelines version
        "| staff | 3 | 40 | in-house \\| paid |",  # untrusted text cannot break a table
        "llama-70b",
        "both orders",
        "`judge_uncertainty`",
        "Human budget: 20 items.",
        "Krippendorff's α [95% CI]",
        "Ties go to the `ties` split:",
        "no prompt is in both train and test",
        f"Judge labels behind this export: {counts['labels']['judge']}",
    ):
        assert needed in text, needed
    agreement = text.split("## Agreement", 1)[1]
    row = next(line for line in agreement.splitlines() if line.startswith("| overall |"))
    assert "[" in row and "(ordinal)" in row  # the interval is shown next to alpha
    assert result["splits"]["train"]["sha256"] in text


@pytest.mark.parametrize("file_type", FILE_TYPES)
@pytest.mark.parametrize("fmt", ["trl", "helpsteer2-preference"])
def test_quality_columns_load_with_datasets(tmp_path, fmt, file_type):
    """Dawid–Skene winners, soft labels and adjudicated rows keep one schema in every file type."""
    datasets.disable_progress_bars()
    schema, pairs = campaign(40, seed=5)
    for n in range(0, 40, 7):  # some items adjudicated, the others not: both kinds of rows in one file
        it, labels = pairs[n]
        review = {
            "label": {"overall": 1},
            "reason": f"reason {n}",
            "revision": 1,
            "adjudicated_at": it["routing"]["decided_at"],
        }
        pairs[n] = ({**it, "adjudication": review}, labels)
    options = ExportOptions(format=fmt, file_type=file_type, aggregation="dawid_skene", soft_labels=True)
    result = export_dataset(
        lambda: iter(pairs), schema=schema, kind="pairwise", options=options, directory=tmp_path, stem="q",
        conversational=True,
    )  # fmt: skip
    expected: dict[str, list] = {}
    for split, row in export_rows(pairs, schema=schema, kind="pairwise", options=options, conversational=True):
        expected.setdefault(split, []).append(row)
    columns = export_columns(schema=schema, kind="pairwise", options=options, conversational=True)
    assert {"final_source", "adjudication_reason", "soft_labels"} <= set(columns.names)
    assert result["aggregation"]["method"] == "dawid_skene" and result["counts"]["final_sources"]["adjudicated"]
    loaded = load(tmp_path, result, file_type, tmp_path / "cache")
    for split, rows in expected.items():
        got = loaded[split].to_list()
        if file_type == "csv":
            got = [{c.name: from_csv(row[c.name], c.type) for c in columns} for row in got]
            rows = [{c.name: None if row[c.name] == "" else row[c.name] for c in columns} for row in rows]
        assert got == rows, split
        assert all(abs(sum(row["soft_labels"]) - 1) < 1e-9 for row in got)
    card = (tmp_path / "README.md").read_text()
    assert "Pairwise winner: Dawid–Skene" in card and "Adjudicated items:" in card
