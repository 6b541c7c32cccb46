"""The MultiPref converter: labels on the −2..2 scale, metadata tags, judge verdicts from a side file, errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.evaluation import routing_eval
from routing.features import judge_signals, metadata_tags
from routing.multipref import PREFERENCES, judge_verdicts, multipref_rows

DATA = Path(__file__).resolve().parents[1] / "data" / "multipref"
FIVE_POINT = ["A-is-clearly-better", "A-is-slightly-better", "Tie", "B-is-slightly-better", "B-is-clearly-better"]


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def _record(*overall: str, **fields) -> dict:
    return {
        "comparison_id": "c1",
        "text": "prompt",
        "completion_a": "one",
        "completion_b": "two",
        "normal_worker_annotations": [{"evaluator": f"n{i}", "overall_pref": p} for i, p in enumerate(overall)],
        "expert_worker_annotations": [],
        **fields,
    }


def test_fixture_rows():
    rows = multipref_rows(_lines("records.jsonl"), judges=_lines("judges.jsonl"))
    assert [row["external_id"] for row in rows] == [f"synthetic-{i}" for i in range(1, 5)]
    first = rows[0]
    assert first["prompt"].startswith("Synthetic example: name two primary colours")
    assert first["response_a"] == "Red and blue." and (first["model_a"], first["model_b"]) == (
        "example-model-small",
        "example-model-large",
    )
    assert first["human_labels"] == [
        {
            "annotator": "normal:normal-ann-1",
            "label": {"overall": 1, "helpfulness": 1, "truthfulness": 0, "harmlessness": 0},
        },
        {
            "annotator": "normal:normal-ann-2",
            "label": {"overall": 2, "helpfulness": 2, "truthfulness": 0, "harmlessness": 0},
        },
    ]
    assert first["metadata"] == {
        "source": "synthetic/examples",
        "category": "Open QA",
        "subject_study": "Visual arts",
        "highest_level_degree": "Arts & Humanities",
    }
    assert first["judge_labels"] == [
        {"judge": "example-judge-a", "label": {"overall": 1}, "label_swapped": {"overall": 2}, "raw": "[[B]]"},
        {"judge": "example-judge-b", "label": {"overall": 1}},
    ]
    # A preference string as a judge's label; a null label_swapped stays null (the output did not parse).
    assert rows[1]["judge_labels"][1] == {"judge": "example-judge-b", "label": {"overall": -1}}
    assert rows[2]["judge_labels"][0]["label_swapped"] is None
    assert judge_signals(rows[2]["judge_labels"])["parse_failure"]
    assert rows[3]["judge_labels"][0]["confidence"] == 0.55


def test_metadata_becomes_tags():
    rows = multipref_rows(_lines("records.jsonl"))
    tags = metadata_tags(rows[2]["metadata"])
    assert {"category=Brainstorm", "safety_concern=moderate", "complexity_of_intents=simple"} <= tags
    assert {"subject_of_expertise=Agriculture", "subject_of_expertise=Public safety"} <= tags
    assert not any(tag.startswith("highest_level_degree=") for tag in tags)  # empty in the record
    assert not any("prompt_id" in tag for row in rows for tag in metadata_tags(row["metadata"]))


@pytest.mark.parametrize(
    ("annotators", "names"),
    [
        ("normal", ["normal:normal-ann-3", "normal:normal-ann-1"]),
        ("expert", ["expert:expert-ann-3", "expert:expert-ann-1"]),
        ("all", ["normal:normal-ann-3", "normal:normal-ann-1", "expert:expert-ann-3", "expert:expert-ann-1"]),
    ],
)
def test_annotator_pools(annotators, names):
    row = multipref_rows(_lines("records.jsonl"), annotators=annotators)[1]
    assert [label["annotator"] for label in row["human_labels"]] == names


def test_preference_scale():
    row = multipref_rows([_record(*FIVE_POINT, "a-is-better", "B-IS-BETTER")])[0]
    assert [h["label"]["overall"] for h in row["human_labels"]] == [-2, -1, 0, 1, 2, -1, 1]


def _mirrored(record: dict) -> dict:
    """The same comparison with the responses in the other order."""
    swap = {"A": "B", "B": "A"}
    mirrored = copy.deepcopy(record)
    mirrored["completion_a"], mirrored["completion_b"] = record["completion_b"], record["completion_a"]
    for annotation in mirrored["normal_worker_annotations"]:
        pref = annotation["overall_pref"]
        annotation["overall_pref"] = swap[pref[0]] + pref[1:] if pref[0] in swap else pref
    return mirrored


@given(st.lists(st.sampled_from(FIVE_POINT), min_size=1, max_size=4))
def test_swapping_the_responses_negates_the_labels(prefs):
    record = _record(*prefs)
    labels = [h["label"]["overall"] for h in multipref_rows([record])[0]["human_labels"]]
    mirrored = [h["label"]["overall"] for h in multipref_rows([_mirrored(record)])[0]["human_labels"]]
    assert mirrored == [-label for label in labels]
    assert set(labels) <= set(PREFERENCES.values())


def test_judge_verdicts_in_the_record():
    own = {"judge": "j", "label": {"overall": -1}, "label_swapped": {"overall": -2}}
    row = multipref_rows([_record("Tie", judge_labels=[own], pref_gpt4="B-is-slightly-better")])[0]
    assert row["judge_labels"] == [own, {"judge": "gpt4", "label": {"overall": 1}}]
    supplied = multipref_rows([_record("Tie")], judges={"c1": [own]})[0]
    assert supplied["judge_labels"] == [own]
    assert multipref_rows([_record("Tie")])[0]["judge_labels"] == []


def test_parsed_records_and_prompt_variants():
    record = {
        "id": 7,
        "prompt": [{"role": "user", "content": "hi"}],
        "response_a": "a",
        "response_b": "b",
        "metadata": {"domain": "chat"},
        "normal_worker_annotations": [{"overall_pref": "Tie"}],
    }
    row = multipref_rows([record])[0]
    assert row["external_id"] == "7" and row["prompt"] == record["prompt"]
    assert row["metadata"] == {"domain": "chat"} and (row["model_a"], row["model_b"]) == ("", "")
    assert row["human_labels"] == [{"annotator": "normal-0", "label": {"overall": 0}}]


def test_rows_feed_routing_eval():
    rows = multipref_rows(_lines("records.jsonl"), annotators="all", judges=_lines("judges.jsonl"))
    result = routing_eval(rows, budgets=(0.0, 1.0), policy_names=("random", "judge_uncertainty"), repeats=3)
    assert result["n_items"] == 4
    # Row synthetic-3's swapped order did not parse: an unusable verdict goes to humans even at budget 0.
    assert result["policies"]["random"]["0"] == result["policies"]["judge_uncertainty"]["0"]
    assert result["policies"]["random"]["0"]["accuracy"] >= result["all_llm"]["accuracy"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (["{not json"], "line 1: not JSON"),
        (["", "[1, 2]"], "line 2: a JSON object is required"),
        ([{"text": "p"}], "record 1, field 'comparison_id': the comparison's id is required"),
        ([_record("Tie"), _record("Tie")], "record 2, field 'comparison_id': id 'c1' appears twice"),
        (
            [json.dumps(_record("A-better"))],
            "line 1 (comparison_id 'c1'), field 'normal_worker_annotations[0].overall_pref': unknown preference",
        ),
        ([_record(completion_b=None)], "record 1 (comparison_id 'c1'), field 'completion_b': text is required"),
        (
            [_record("Tie", expert_worker_annotations=None)],
            "field 'expert_worker_annotations': a list of annotations is required",
        ),
        (
            [_record(normal_worker_annotations=[{"overall_pref": "Tie", "harmless_pref": "safe"}])],
            "field 'normal_worker_annotations[0].harmless_pref': unknown preference 'safe'",
        ),
        ([_record("Tie", judge_labels=[{"judge": "j"}])], "field 'judge_labels[0].label': required"),
        (
            [_record("Tie", judge_labels=[{"judge": "gpt4", "label": None}], pref_gpt4="Tie")],
            "more than one verdict of judge(s) 'gpt4'",
        ),
    ],
)
def test_record_errors_name_the_record_and_field(records, message):
    with pytest.raises(ValueError) as caught:
        multipref_rows(records, annotators="all")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("judges", "message"),
    [
        (['{"judge": "j", "label": null}'], "judges line 1, field 'id': the item's id is required"),
        (['{"id": "c1", "label": null}'], "judges line 1, field 'judge'"),
        (['{"id": "c1", "judge": "j", "label": {"overall": "B"}}'], "judges line 1, field 'label'"),
        (['{"id": "c1", "judge": "j", "label": null, "confidence": "high"}'], "field 'confidence'"),
        (
            ['{"id": "c1", "judge": "j", "label": null}', "", '{"id": "c1", "judge": "j", "label": null}'],
            "judges line 3: a second verdict of judge 'j' on item 'c1'",
        ),
        (['{"id": "other", "judge": "j", "label": null}'], "judges: 1 verdict id(s) match no record: 'other'"),
    ],
)
def test_judge_errors_name_the_line_and_field(judges, message):
    with pytest.raises(ValueError) as caught:
        multipref_rows([_record("Tie")], judges=judges)
    assert message in str(caught.value)


def test_unknown_annotator_pool():
    with pytest.raises(ValueError, match="annotators"):
        multipref_rows([], annotators="crowd")


def test_judge_verdicts_keyed_by_id():
    verdicts = judge_verdicts(_lines("judges.jsonl"))
    assert sorted(verdicts) == [f"synthetic-{i}" for i in range(1, 5)]
    assert [v["judge"] for v in verdicts["synthetic-2"]] == ["example-judge-a", "example-judge-b"]
