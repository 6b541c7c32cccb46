"""`manage.py routing_eval`: JSONL rows or an LLMBar directory in, the evaluation as JSON out; bad input
named by file, line and field."""

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

LLMBAR = Path(__file__).resolve().parent.parent / "data" / "llmbar" / "natural"


def test_an_llmbar_directory_gives_the_authors_all_llm_accuracy(tmp_path, capsys):
    directory = tmp_path / "natural"
    directory.mkdir()
    shutil.copy(LLMBAR / "gpt4-swap-result.json", directory / "gpt4-swap-result.json")
    # The result file repeats each instance (input, outputs, label): it stands in for dataset.json here.
    shutil.copy(LLMBAR / "gpt4-swap-result.json", directory / "dataset.json")
    call_command("routing_eval", str(directory), "--budgets", "0,0.25", "--repeats", "3", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["n_items"] == 100
    assert result["all_llm"]["accuracy"] == pytest.approx(0.93)  # LLMBar natural, gpt4 swap: correct_both
    assert set(result["policies"]) == {"random", "judge_uncertainty", "learned"}
    assert result["oracle"]["0.25"]["accuracy"] >= result["policies"]["random"]["0.25"]["accuracy"]


def test_bad_rows_are_named_by_line_and_field(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "human_labels": [], "judge_labels": []}\n{"id": "b", "human_labels": 3}\n')
    with pytest.raises(CommandError, match=r"rows.jsonl, line 2, field 'human_labels'"):
        call_command("routing_eval", str(path))
    path.write_text("{not json\n")
    with pytest.raises(CommandError, match="line 1: not JSON"):
        call_command("routing_eval", str(path))
    with pytest.raises(CommandError, match="--policies: unknown oracle"):
        call_command("routing_eval", str(LLMBAR), "--policies", "oracle")


MULTIPREF = Path(__file__).resolve().parent.parent / "data" / "multipref"


def test_a_multipref_export_with_judge_verdicts(capsys):
    call_command(
        "routing_eval", str(MULTIPREF / "records.jsonl"), "--format", "multipref", "--annotators", "all",
        "--judges", str(MULTIPREF / "judges.jsonl"), "--budgets", "0,1", "--repeats", "2", "--json",
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["n_items"] == 4 and result["all_human"]["accuracy"] == result["policies"]["random"]["1"]["accuracy"]
    assert "judge_uncertainty" in result["learned_importances"]


def test_multipref_errors_name_the_file(tmp_path):
    bad = tmp_path / "judges.jsonl"
    bad.write_text('{"id": "nope", "judge": "j", "label": {"overall": 1}}\n')
    with pytest.raises(CommandError, match=r"records.jsonl: .*nope|judges.jsonl: .*nope"):
        call_command(
            "routing_eval", str(MULTIPREF / "records.jsonl"), "--format", "multipref", "--judges", str(bad),
            "--repeats", "1",
        )  # fmt: skip
    with pytest.raises(CommandError, match="--judges: only with --format multipref"):
        call_command("routing_eval", str(MULTIPREF / "records.jsonl"), "--judges", str(bad))


@pytest.mark.skipif(__import__("routing.embeddings").embeddings.embeddings_available(), reason="extra installed")
def test_embeddings_without_the_extra_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"--embeddings: .*tandem\[embeddings\]"):
        call_command(
            "routing_eval", str(MULTIPREF / "records.jsonl"), "--format", "multipref", "--repeats", "1",
            "--embeddings",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"human_labels": [{"annotator": "a", "label": {"overall": "A"}}], "judge_labels": []},
         "line 1, field 'human_labels[0]'.label: \"overall\" must be an integer"),
        ({"human_labels": [], "judge_labels": [{"judge": "j", "label": {"overall": 1}, "label_swapped": {"o": 1}}]},
         "line 1, field 'judge_labels[0]'.label_swapped: a label is an object"),
        ({"human_labels": ["x"], "judge_labels": []}, "line 1, field 'human_labels[0]': an object"),
        ([1, 2], "line 1, a row is a JSON object"),
    ],
)  # fmt: skip
def test_bad_labels_are_named_by_line_and_field(tmp_path, row, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CommandError) as raised:
        call_command("routing_eval", str(path), "--repeats", "1")
    assert message in str(raised.value)
