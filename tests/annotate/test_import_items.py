"""items_import: every layout we accept, every bad input we refuse (with where), all or nothing."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotate.models import Item, RoutingDecision
from annotate.services.imports import ImportFailed, items_import
from tests.conftest import LLMBAR, SHARED_LLMBAR, jsonl, pair

pytestmark = pytest.mark.django_db


def run(campaign, stream, filename="items.jsonl", **kw):
    return items_import(campaign=campaign, stream=stream, filename=filename, **kw)


def refused(campaign, stream, filename="items.jsonl"):
    before = Item.objects.count()
    with pytest.raises(ImportFailed) as info:
        run(campaign, stream, filename)
    assert Item.objects.count() == before, "a refused import must write nothing"
    return info.value


def test_canonical_jsonl_imports_and_reimport_is_idempotent(campaign):
    rows = [pair(i, model_a="m1", model_b="m2", metadata={"domain": "math"}) for i in range(5)]
    report = run(campaign, jsonl(*rows))
    assert report.as_dict() == {"rows": 5, "created": 5, "unchanged": 0, "conflicts": 0, "conflict_rows": []}
    item = Item.objects.get(campaign=campaign, external_id="p3")
    assert (item.prompt, item.response_a, item.response_b, item.model_a, item.model_b) == (
        "Question 3?",
        "Answer A3",
        "Answer B3",
        "m1",
        "m2",
    )
    assert item.metadata == {"domain": "math"}
    # The default policy (all_human) routes new items at once, and the decision is kept.
    assert item.route == "human"
    decision = item.routing_decisions.get()
    assert (decision.destination, decision.policy) == ("human", "all_human")
    again = run(campaign, jsonl(*rows))
    assert (again.created, again.unchanged, again.n_conflicts) == (0, 5, 0)
    assert Item.objects.filter(campaign=campaign).count() == 5
    assert RoutingDecision.objects.filter(campaign=campaign).count() == 5


def test_policies_that_need_judges_leave_new_items_unrouted(campaign):
    campaign.routing_policy = "judge_uncertainty"
    campaign.save()
    run(campaign, jsonl(pair(1)))
    assert Item.objects.get(campaign=campaign).route == "unrouted"
    assert not RoutingDecision.objects.exists()


def test_queue_rank_is_a_stable_shuffle(campaign, multipref):
    rows = [pair(i) for i in range(50)]
    run(campaign, jsonl(*rows))
    run(multipref, jsonl(*rows))
    order = list(Item.objects.filter(campaign=campaign).order_by("queue_rank").values_list("external_id", flat=True))
    other = list(Item.objects.filter(campaign=multipref).order_by("queue_rank").values_list("external_id", flat=True))
    assert order != [r["id"] for r in rows] and order != other


def test_changed_content_under_an_existing_id_is_reported_not_overwritten(campaign):
    run(campaign, jsonl(pair(1), pair(2)))
    report = run(campaign, jsonl(pair(1, response_b="Edited"), pair(2), pair(3)))
    assert (report.created, report.unchanged, report.n_conflicts) == (1, 1, 1)
    assert report.conflicts[0]["id"] == "p1" and report.conflicts[0]["fields"] == ["response_b"]
    assert report.conflicts[0]["where"] == "line 1"
    assert Item.objects.get(campaign=campaign, external_id="p1").response_b == "Answer B1"


def test_same_ids_in_two_campaigns_are_independent(campaign, multipref):
    run(campaign, jsonl(pair(1)))
    assert run(multipref, jsonl(pair(1))).created == 1


def test_chat_prompt_stays_a_message_list(campaign):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    run(campaign, jsonl({"id": "c1", "prompt": messages, "response_a": "Hello", "response_b": "Hey"}))
    assert Item.objects.get(external_id="c1").prompt == messages


@pytest.mark.parametrize(
    "row, expected",
    [
        ({"id": "x", "prompt": "P", "chosen": "good", "rejected": "bad"}, ("P", "good", "bad")),
        ({"id": "x", "prompt": "P", "response_1": "one", "response_2": "two"}, ("P", "one", "two")),
        ({"id": "x", "input": "P", "output_1": "one", "output_2": "two"}, ("P", "one", "two")),
        ({"id": "x", "instruction": "Do", "input": "this", "output_1": "a", "output_2": "b"}, ("Do\n\nthis", "a", "b")),
        (
            {
                "id": "x",
                "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}],
                "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}],
            },
            ([{"role": "user", "content": "Q"}], "good", "bad"),
        ),
    ],
)
def test_common_layouts_import_as_they_are(campaign, row, expected):
    run(campaign, jsonl(row))
    item = Item.objects.get(campaign=campaign, external_id="x")
    assert (item.prompt, item.response_a, item.response_b) == expected


def test_unknown_columns_are_kept_in_metadata(campaign):
    run(campaign, jsonl(pair(1, label=2, metadata={"domain": "code"})))
    assert Item.objects.get(external_id="p1").metadata == {"domain": "code", "label": 2}


def test_the_llmbar_files_import_without_conversion(campaign):
    path = LLMBAR / "dataset.json"
    with path.open("rb") as stream:
        report = run(campaign, stream, filename=str(path))
    assert report.created == 100
    with path.open("rb") as stream:
        assert run(campaign, stream, filename=str(path)).unchanged == 100
    first = json.loads(path.read_text())[0]
    item = Item.objects.filter(campaign=campaign, response_a=first["output_1"]).get()
    assert item.prompt == first["input"] and item.metadata == {"label": first["label"]}
    assert item.external_id.startswith("h-")


@pytest.mark.skipif(not (SHARED_LLMBAR / "neighbor").exists(), reason="shared data not beside the project")
def test_the_llmbar_neighbor_set_imports_too(campaign):
    path = SHARED_LLMBAR / "neighbor" / "dataset.json"
    with path.open("rb") as stream:
        report = run(campaign, stream, filename=str(path))
    assert report.created == len(json.loads(path.read_text()))


def test_csv_with_json_cells(campaign):
    text = (
        "id,prompt,response_a,response_b,metadata\n"
        'c1,"What is 2+2?","4","[1, 2] is a list",\n'
        'c2,"[{""role"": ""user"", ""content"": ""Hi""}]","Hello","Hey","{""domain"": ""chat""}"\n'
        'c3,"Multi\nline prompt","a","b",\n'
    )
    report = run(campaign, io.BytesIO(text.encode()), filename="items.csv")
    assert report.created == 3
    assert Item.objects.get(external_id="c1").response_b == "[1, 2] is a list"
    assert Item.objects.get(external_id="c2").prompt == [{"role": "user", "content": "Hi"}]
    assert Item.objects.get(external_id="c2").metadata == {"domain": "chat"}
    assert Item.objects.get(external_id="c3").prompt == "Multi\nline prompt"


def test_parquet(campaign):
    table = pa.Table.from_pylist([pair(i, model_a="m1", model_b=None) for i in range(3)])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    assert run(campaign, buffer, filename="items.parquet").created == 3
    assert Item.objects.get(external_id="p2").model_b == ""


def test_rubric_rows(rubric_campaign):
    run(rubric_campaign, jsonl({"id": "r1", "prompt": "P", "response": "R", "reference_answer": "Ref"}))
    item = Item.objects.get(campaign=rubric_campaign)
    assert (item.response, item.reference, item.response_a) == ("R", "Ref", "")


def test_gold_labels_are_validated_against_the_schema(campaign):
    run(campaign, jsonl(pair(1, gold_label={"overall": -1})))
    assert Item.objects.get(external_id="p1").gold_label == {"overall": -1}
    error = refused(campaign, jsonl(pair(2, gold_label={"overall": 5})))
    assert str(error.errors[0]) == "items.jsonl, line 1, field 'gold_label': overall: 5 is outside -1..1"


# --- Every bad input: a message naming the line and the field, and nothing imported. ---


def test_a_gold_explanation_is_stored_and_needs_a_gold_label(campaign):
    run(campaign, jsonl(pair(1, gold_label={"overall": 1}, gold_explanation="A cites the source."), pair(2)))
    assert Item.objects.get(external_id="p1").gold_explanation == "A cites the source."
    assert Item.objects.get(external_id="p2").gold_explanation == ""
    # A row without an explanation hashes without the key, as before explanations existed: re-imports match.
    assert run(campaign, jsonl(pair(2))).as_dict()["unchanged"] == 1
    error = refused(campaign, jsonl(pair(3, gold_explanation="why")))
    assert (
        str(error.errors[0])
        == "items.jsonl, line 1, field 'gold_explanation': is given without a gold_label to explain"
    )


def test_bad_json_names_the_line(campaign):
    error = refused(campaign, jsonl(pair(1), '{"id": "p2", "prompt": ', pair(3)))
    assert error.errors[0].where == "line 2" and "invalid JSON" in error.errors[0].message
    assert str(error).startswith("items.jsonl, line 2: invalid JSON")
    assert str(error).endswith("nothing was imported")


def test_missing_field(campaign):
    error = refused(campaign, jsonl(pair(1), {"id": "p2", "prompt": "P", "response_a": "A"}))
    assert str(error.errors[0]) == "items.jsonl, line 2, field 'response_b': missing"


def test_missing_prompt(campaign):
    error = refused(campaign, jsonl({"id": "p1", "response_a": "A", "response_b": "B"}))
    assert error.errors[0].field == "prompt" and error.errors[0].where == "line 1"


def test_mistyped_field(campaign):
    error = refused(campaign, jsonl(pair(1), pair(2, response_a={"text": "A"})))
    assert (
        str(error.errors[0])
        == "items.jsonl, line 2, field 'response_a': must be a string or a list of messages, not dict"
    )


def test_bad_message_in_a_chat_prompt(campaign):
    error = refused(campaign, jsonl(pair(1, prompt=[{"role": "wizard", "content": "hi"}])))
    assert error.errors[0].field == "prompt[0].role"


def test_duplicate_id_within_the_file(campaign):
    error = refused(campaign, jsonl(pair(1), pair(2), pair(1)))
    assert str(error.errors[0]) == "items.jsonl, line 3, field 'id': duplicate id 'p1' (first at line 1)"


def test_empty_file(campaign):
    error = refused(campaign, io.BytesIO(b""))
    assert error.errors[0].message == "the file has no rows"
    error = refused(campaign, io.BytesIO(b"\n\n  \n"))
    assert error.errors[0].message == "the file has no rows"


def test_non_utf8_byte(campaign):
    stream = io.BytesIO(json.dumps(pair(1)).encode() + b"\n" + b'{"id": "p2", "prompt": "caf\xe9"}\n')
    error = refused(campaign, stream)
    assert error.errors[0].where == "line 2" and "not valid UTF-8 (byte 0xe9" in error.errors[0].message


def test_row_over_the_size_limit(campaign, settings):
    settings.TANDEM_IMPORT_MAX_ROW_BYTES = 1000
    error = refused(campaign, jsonl(pair(1), pair(2, response_a="x" * 5000), pair(3)))
    assert error.errors[0].where == "line 2" and "over the size limit of 1,000 bytes" in error.errors[0].message
    assert len(error.errors) == 1, "the line after an oversized one keeps its number and is fine"


def test_a_row_that_is_not_an_object(campaign):
    error = refused(campaign, jsonl(pair(1), "[1, 2, 3]"))
    assert str(error.errors[0]) == "items.jsonl, line 2: a row must be a JSON object, not list"


def test_every_error_is_reported_not_just_the_first(campaign):
    error = refused(campaign, jsonl(pair(1), "nope", pair(3, response_b=None), pair(1)))
    assert [e.where for e in error.errors] == ["line 2", "line 3", "line 4"]


def test_an_error_after_many_good_batches_still_writes_nothing(campaign):
    rows = [pair(i) for i in range(12_000)] + [{"id": "bad"}]
    error = refused(campaign, jsonl(*rows))
    assert error.errors[0].where == "line 12001"


def test_json_array_errors_name_the_line(campaign):
    text = '[\n  {"id": "a", "prompt": "P", "response_a": "A", "response_b": "B"},\n  {"id": "b", "prompt": 7.5}\n]'
    error = refused(campaign, io.BytesIO(text.encode()), filename="items.json")
    assert str(error.errors[0]).startswith("items.json, line 3 (element 2), field 'response_a': missing")
    error = refused(campaign, io.BytesIO(b'[{"id": "a"},\n {"id": '), filename="items.json")
    assert [(e.where, e.message[:12]) for e in error.errors] == [
        ("line 1 (element 1)", "missing: a p"),
        ("line 2 (element 2)", "invalid JSON"),
    ]


def test_csv_errors_name_the_line(campaign):
    text = "id,prompt,response_a,response_b\nc1,P,A,B\nc2,P,A\n"
    error = refused(campaign, io.BytesIO(text.encode()), filename="items.csv")
    assert str(error.errors[0]) == "items.csv, line 3: 3 cells, but the header has 4 columns"
    error = refused(campaign, io.BytesIO(b"id,prompt,response_a,response_b\nc1,P\xff,A,B\n"), filename="items.csv")
    assert error.errors[0].where == "line 2" and "UTF-8" in error.errors[0].message


def test_not_a_parquet_file(campaign):
    error = refused(campaign, io.BytesIO(b"PAR1 but not really"), filename="items.parquet")
    assert "not a readable Parquet file" in error.errors[0].message


def test_a_rubric_row_in_a_pairwise_campaign_says_what_is_missing(campaign):
    error = refused(campaign, jsonl({"id": "r", "prompt": "P", "response": "R"}))
    assert error.errors[0].field == "response_a" and "needs two responses" in error.errors[0].message


def test_a_nul_character_is_refused_on_every_database(campaign):
    error = refused(campaign, jsonl(pair(1, response_a="bad\u0000byte")))
    assert error.errors[0].where == "line 1" and "NUL character" in error.errors[0].message


def test_text_that_needs_escaping_survives_copy(campaign):
    tricky = "tab\there, newline\nthere, backslash \\ and \\N and \r\n CRLF, émoji 🎉, \\t literal"
    run(
        campaign,
        jsonl(pair(1, response_a=tricky, prompt=[{"role": "user", "content": tricky}], metadata={"k": tricky})),
    )
    item = Item.objects.get(campaign=campaign)
    assert item.response_a == tricky and item.prompt[0]["content"] == tricky and item.metadata == {"k": tricky}
    assert (
        run(
            campaign,
            jsonl(pair(1, response_a=tricky, prompt=[{"role": "user", "content": tricky}], metadata={"k": tricky})),
        ).unchanged
        == 1
    )


def test_a_duplicate_far_apart_in_an_empty_campaign_is_worded_like_any_other(campaign):
    # Into an empty campaign rows go straight in and the unique constraint finds the duplicate,
    # many batches after its first line; the checked pass then words it exactly.
    rows = [pair(i) for i in range(11_000)] + [pair(3)]
    error = refused(campaign, jsonl(*rows))
    expected = "items.jsonl, line 11001, field 'id': duplicate id 'p3' (first at line 4)"
    assert [str(e) for e in error.errors] == [expected]
    assert not RoutingDecision.objects.filter(campaign=campaign).exists()


def test_rows_read_back_as_they_were_parsed(campaign):
    from annotate.services.imports.rows import item_row_parse

    rows = [
        pair(1, metadata={"ünï": "cödé", "n": [1, 2.5, None]}, model_a="m1", model_b="m2"),
        pair(2, prompt=[{"role": "system", "content": "be\tterse"}, {"role": "user", "content": "hi\\n"}]),
        pair(3, gold_label={"overall": 1}, reference="ref\r\nline"),
    ]
    report = run(campaign, jsonl(*rows))
    assert report.created == 3
    for row in rows:
        expected = item_row_parse(row, kind=campaign.kind, schema=campaign.label_schema)
        item = Item.objects.get(campaign=campaign, external_id=row["id"])
        for name in (*expected.CONTENT_FIELDS, "gold_explanation", "content_hash"):
            assert getattr(item, name) == getattr(expected, name), name
    again = run(campaign, jsonl(*rows))
    assert (again.created, again.unchanged, again.n_conflicts) == (0, 3, 0)
