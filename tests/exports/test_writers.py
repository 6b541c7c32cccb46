"""Writing splits: same input, same bytes; a crash leaves nothing; Parquet's schema comes from the format."""

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from annotate.exports import ExportOptions, export_columns, export_dataset, export_rows, export_write

from . import campaign

FILE_TYPES = ("jsonl", "parquet", "csv")
FORMATS = (("trl", "pairwise"), ("helpsteer2-preference", "pairwise"), ("ratings", "both"), ("raw", "both"))


def write(pairs, schema, kind, directory, row_group_size=7, **options):
    opts = ExportOptions(**options)
    columns = export_columns(schema=schema, kind=kind, options=opts, conversational=True)
    stream = export_rows(pairs, schema=schema, kind=kind, options=opts, conversational=True)
    return export_write(
        stream, directory=directory, stem="data", options=opts, columns=columns, row_group_size=row_group_size
    )


@pytest.mark.parametrize("file_type", FILE_TYPES)
@pytest.mark.parametrize(("fmt", "kind"), FORMATS)
def test_two_runs_write_the_same_bytes(tmp_path, fmt, kind, file_type):
    schema, pairs = campaign(40, kind=kind, seed=7)
    options = {"format": fmt, "file_type": file_type, "test_fraction": 0.3}
    first = write(pairs, schema, kind, tmp_path / "one", **options)
    second = write(pairs, schema, kind, tmp_path / "two", **options)
    assert first["rows"] > 0
    for split, info in first["splits"].items():
        one = (tmp_path / "one" / info["file"]).read_bytes()
        assert one == (tmp_path / "two" / info["file"]).read_bytes(), split
        assert info["sha256"] == hashlib.sha256(one).hexdigest() == second["splits"][split]["sha256"]
        assert info["bytes"] == len(one)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(i["file"] for i in first["splits"].values())
    assert [f["name"] for f in first["files"]] == [i["file"] for i in first["splits"].values()]


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_a_crash_mid_write_leaves_no_file_and_keeps_an_earlier_one(tmp_path, file_type):
    schema, pairs = campaign(30, seed=8)
    options = ExportOptions(format="trl", file_type=file_type, test_fraction=0.5)
    columns = export_columns(schema=schema, kind="pairwise", options=options, conversational=True)
    rows = list(export_rows(pairs, schema=schema, kind="pairwise", options=options, conversational=True))

    def crashing():
        yield from rows[:15]  # past a few row groups of 4, so Parquet has written data already
        raise RuntimeError("the database went away")

    def export(directory):
        with pytest.raises(RuntimeError, match="went away"):
            export_write(
                crashing(), directory=directory, stem="data", options=options, columns=columns, row_group_size=4
            )

    export(tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []  # no final file, no .partial
    earlier = tmp_path / "again" / f"data.train.{file_type}"
    earlier.parent.mkdir()
    earlier.write_bytes(b"an earlier, complete export")
    export(earlier.parent)
    assert list(earlier.parent.iterdir()) == [earlier]
    assert earlier.read_bytes() == b"an earlier, complete export"


def test_parquet_schema_is_the_formats_whatever_the_data(tmp_path):
    schema, pairs = campaign(25, seed=9)
    full = write(pairs, schema, "pairwise", tmp_path / "full", format="trl", file_type="parquet", ties="drop")
    empty = write([], schema, "pairwise", tmp_path / "empty", format="trl", file_type="parquet", ties="drop")
    assert empty["rows"] == 0 and full["rows"] > 7
    full_file = pq.ParquetFile(tmp_path / "full" / full["splits"]["train"]["file"])
    empty_file = pq.ParquetFile(tmp_path / "empty" / empty["splits"]["train"]["file"])
    assert full_file.schema_arrow == empty_file.schema_arrow
    prompt = full_file.schema_arrow.field("prompt").type
    assert pa.types.is_list(prompt) and prompt.value_type == pa.struct(
        [("role", pa.string()), ("content", pa.string())]
    )
    assert full_file.metadata.num_row_groups == -(-full["rows"] // 7)  # row groups of row_group_size rows


def test_a_row_for_an_unexpected_split_is_an_error(tmp_path):
    options = ExportOptions(format="raw")
    schema, _ = campaign(1)
    columns = export_columns(schema=schema, kind="pairwise", options=options)
    with pytest.raises(ValueError, match="split 'ties'"):
        export_write(iter([("ties", {})]), directory=tmp_path, stem="d", options=options, columns=columns)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="plain file name"):
        export_write(iter([]), directory=tmp_path, stem="../d", options=options, columns=columns)


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_an_empty_export_writes_every_file_and_a_card(tmp_path, file_type):
    schema, _ = campaign(1)
    options = ExportOptions(format="trl", file_type=file_type, test_fraction=0.2)
    result = export_dataset([], schema=schema, kind="pairwise", options=options, directory=tmp_path, stem="d")
    assert {split: info["rows"] for split, info in result["splits"].items()} == {"train": 0, "test": 0, "ties": 0}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["README.md", f"d.test.{file_type}", f"d.ties.{file_type}", f"d.train.{file_type}"])
    header = yaml.safe_load((tmp_path / "README.md").read_text().split("---\n", 2)[1])
    assert "configs" not in header and header["size_categories"] == ["n<1K"]
