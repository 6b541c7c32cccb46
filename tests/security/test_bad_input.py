"""Bad input on import must not hurt the server: Parquet bombs, JSON nested past the decoders' limits and
oversized CSV cells end in an error that names the file, line and limit — through the API, the command
line and the import job alike — never in a 500, a traceback or gigabytes of memory."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.models import Item, Job
from annotate.services.imports import ImportFailed, items_import
from tests.conftest import jsonl, pair, subprocess_env

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
MB = 1_000_000


def parquet_bomb(rows: int = 2000) -> bytes:
    """A column of one repeated 1 MB string, dictionary-encoded: about 2 KB on disk, 2 GB decoded. Built as
    an Arrow dictionary array, so the test itself never holds the decoded column."""
    big = pa.array(["x" * MB])
    same = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), big)
    table = pa.table(
        {
            "id": pa.array([f"b{i}" for i in range(rows)]),
            "prompt": pa.array(["P"] * rows),
            "response_a": same,
            "response_b": pa.array(["B"] * rows),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=rows)
    return sink.getvalue()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_line(depth: int) -> str:
    return json.dumps(pair(2))[:-1] + f', "metadata": {{"deep": {nested(depth)}}}}}'


def upload(body: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, content_type="application/octet-stream")


def command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- Parquet -----------------------------------------------------------------------------------


def test_the_bomb_is_small_on_disk():
    assert len(parquet_bomb()) < 20_000


def test_a_parquet_bomb_is_refused_through_the_api_naming_the_limit(admin_api, campaign):
    response = admin_api.post(
        f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload(parquet_bomb(), "bomb.parquet")}
    )
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "bomb.parquet" in detail and "TANDEM_IMPORT_MAX_EXPANSION" in detail and "decodes to more than" in detail
    assert Item.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_parquet_bomb_is_refused_by_the_command_without_growing_the_process(tmp_path, campaign):
    """The real CLI in a child process that reports its own peak memory: the file decodes to 2 GB, the
    process must stay far below that."""
    from django.db import connection

    bomb = tmp_path / "bomb.parquet"
    bomb.write_bytes(parquet_bomb())
    script = (
        "import resource, sys, django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotate.settings'); django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.core.management.base import CommandError\n"
        "try:\n"
        f"    call_command('import_items', {campaign.slug!r}, {str(bomb)!r})\n"
        "except CommandError as exc:\n"
        "    print('ERROR', exc, file=sys.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=subprocess_env(connection), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "TANDEM_IMPORT_MAX_EXPANSION" in result.stderr and "Traceback" not in result.stderr
    peak_kib = int(result.stdout.strip().splitlines()[-1])
    # Django, pandas and pyarrow loaded take ~0.3-0.6 GB here; the bomb decoded would be 2 GB more.
    assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib} KiB"
    assert Item.objects.count() == 0


def test_parquet_rows_are_checked_in_the_footer_before_reading(campaign, settings):
    settings.TANDEM_IMPORT_MAX_ROWS = 10
    table = pa.table({"id": [f"p{i}" for i in range(11)], "prompt": ["P"] * 11, "response_a": ["A"] * 11,
                      "response_b": ["B"] * 11})  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink)
    sink.seek(0)
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=sink, filename="many.parquet")
    assert "the file has 11 rows; the limit is 10 (TANDEM_IMPORT_MAX_ROWS)" in str(info.value)


def test_an_ordinary_parquet_file_with_repeated_text_still_imports(campaign):
    rows = 300
    table = pa.table({"id": [f"p{i}" for i in range(rows)], "prompt": ["The same long question " * 50] * rows,
                      "response_a": ["A"] * rows, "response_b": ["B"] * rows})  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    sink.seek(0)
    assert items_import(campaign=campaign, stream=sink, filename="ok.parquet").created == rows
    assert Item.objects.get(external_id="p7").prompt.startswith("The same long question")


# --- JSON nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 260, 1100, 10_000])  # our limit, orjson's writer, Python's, orjson's reader
def test_nesting_past_every_decoders_limit_names_the_line(campaign, depth):
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=jsonl(pair(1), deep_line(depth)), filename="deep.jsonl")
    assert str(info.value).startswith("deep.jsonl, line 2: JSON nested deeper than the limit of 64 levels")
    assert "TANDEM_IMPORT_MAX_JSON_DEPTH" in str(info.value)


def test_nesting_at_the_limit_imports(campaign):
    items_import(campaign=campaign, stream=jsonl(pair(1), deep_line(62)), filename="ok.jsonl")
    assert Item.objects.count() == 2


def test_a_deep_element_of_a_json_array_names_its_line(campaign):
    body = "[\n" + json.dumps(pair(1)) + ",\n" + deep_line(10_000) + "\n]\n"
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=io.BytesIO(body.encode()), filename="deep.json")
    assert "deep.json, line 3 (element 2): JSON nested deeper" in str(info.value)


def test_a_deep_json_cell_in_a_csv_names_line_and_field(campaign):
    out = StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "prompt", "response_a", "response_b", "metadata"])
    writer.writerow(["p1", "P", "A", "B", '{"deep": ' + nested(300) + "}"])
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=io.BytesIO(out.getvalue().encode()), filename="deep.csv")
    assert "deep.csv, line 2, field 'metadata': JSON nested deeper" in str(info.value)


def test_deep_json_through_the_api_is_a_400_naming_the_line(admin_api, campaign):
    body = (json.dumps(pair(1)) + "\n" + deep_line(10_000) + "\n").encode()
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload(body, "d.jsonl")})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["where"] == "line 2"
    assert "TANDEM_IMPORT_MAX_JSON_DEPTH" in response.json()["detail"]


def test_deep_json_on_the_command_line_is_an_error_not_a_traceback(tmp_path, campaign):
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(pair(1)) + "\n" + deep_line(10_000) + "\n")
    with pytest.raises(CommandError) as info:
        command("import_items", campaign.slug, str(path))
    assert f"{path}, line 2: JSON nested deeper than the limit of 64 levels" in str(info.value)


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection
def test_deep_json_in_an_import_job_stores_the_message_not_a_traceback(
    admin_api, campaign, eager_celery, django_capture_on_commit_callbacks
):
    body = (json.dumps(pair(1)) + "\n" + deep_line(10_000) + "\n").encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            f"/api/campaigns/{campaign.slug}/items/import/?async=1", {"file": upload(body, "d.jsonl")}
        )
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == "failed"
    assert job.error.startswith("d.jsonl, line 2: JSON nested deeper") and "Traceback" not in job.error


# --- CSV cells and row counts ------------------------------------------------------------------


def csv_file(*rows: list[str]) -> io.BytesIO:
    out = StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "prompt", "response_a", "response_b"])
    writer.writerows(rows)
    return io.BytesIO(out.getvalue().encode())


def test_a_csv_cell_over_128_kib_but_within_the_row_limit_imports(campaign):
    long = "word " * 60_000  # 300,000 bytes: over the csv module's default field limit of 131,072
    report = items_import(campaign=campaign, stream=csv_file(["p1", "P", long, "B"]), filename="long.csv")
    assert report.created == 1 and Item.objects.get().response_a == long


def test_a_csv_cell_over_the_row_limit_names_line_field_and_size_and_reading_goes_on(campaign, settings):
    settings.TANDEM_IMPORT_MAX_ROW_BYTES = 64 * 1024
    multiline = "line of text\n" * 8000  # 104,000 bytes, quoted over 8,000 lines
    stream = csv_file(["p1", "P", "A", "B"], ["p2", "P", multiline, "B"], ["p3", "P", "A"])
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=stream, filename="big.csv")
    first, second = (str(e) for e in info.value.errors)
    assert first.startswith("big.csv, line 3, field 'response_a': cell of 104,00")
    assert "bytes exceeds the limit of 65,536 bytes (TANDEM_IMPORT_MAX_ROW_BYTES)" in first
    assert second == "big.csv, line 8004: 3 cells, but the header has 4 columns"
    assert Item.objects.count() == 0


def test_more_rows_than_the_limit_are_refused(campaign, settings):
    settings.TANDEM_IMPORT_MAX_ROWS = 3
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=jsonl(*(pair(i) for i in range(5))), filename="many.jsonl")
    assert "many.jsonl, line 4: the file has more than 3 rows (TANDEM_IMPORT_MAX_ROWS)" in str(info.value)


def test_bad_csv_through_the_api_and_command_line_names_the_cell(admin_api, campaign, settings, tmp_path):
    settings.TANDEM_IMPORT_MAX_ROW_BYTES = 32 * 1024
    body = csv_file(["p1", "P", "x" * 40_000, "B"]).getvalue()
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload(body, "c.csv")})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["file"], error["where"], error["field"]) == ("c.csv", "line 2", "response_a")
    assert error["message"].startswith("cell of 40,00")
    path = tmp_path / "c.csv"
    path.write_bytes(body)
    with pytest.raises(CommandError, match=r"line 2, field 'response_a': cell of 40,00\d bytes exceeds"):
        command("import_items", campaign.slug, str(path))
