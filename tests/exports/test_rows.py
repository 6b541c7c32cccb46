"""Rows of each format from plain items and labels: winners, conversational prompts, ties, filters, splits."""

import itertools
import json
import random
from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate import schema as label_schema
from annotate.exports import ExportCounts, ExportOptions, ExportOptionsError, export_columns, export_rows
from annotate.exports.context import prompt_text

from . import campaign, human, item, judge, reference_direction

PAIRWISE = label_schema.preset("helpsteer2-preference")


def rows(pairs, schema=PAIRWISE, kind="pairwise", conversational=False, counts=None, **options):
    return list(
        export_rows(
            pairs,
            schema=schema,
            kind=kind,
            options=ExportOptions(**options),
            conversational=conversational,
            counts=counts,
        )
    )


def test_trl_chosen_and_rejected_follow_the_aggregated_label():
    schema, pairs = campaign(90, seed=1, chat_every=0)
    by_id = {it["id"]: (it, labels) for it, labels in pairs}
    got = rows(pairs, schema=schema, format="trl", ties="drop")
    assert len(got) > 30
    for split, row in got:
        it, labels = by_id[row["id"]]
        direction = reference_direction(labels, "hybrid")
        winner, loser = ("b", "a") if direction > 0 else ("a", "b")
        assert (row["chosen"], row["rejected"]) == (it[f"response_{winner}"], it[f"response_{loser}"])
        assert (row["model_chosen"], row["model_rejected"]) == (it[f"model_{winner}"], it[f"model_{loser}"])
        assert row["margin"] == abs(row["preference_strength"]) > 0
        assert split == "train" and row["prompt"] == it["prompt"]


def test_every_row_has_exactly_the_declared_columns():
    for fmt, kind in [("trl", "pairwise"), ("helpsteer2-preference", "both"), ("ratings", "both"), ("raw", "both")]:
        schema, pairs = campaign(12, kind=kind, seed=2)
        options = {"format": fmt, "test_fraction": 0.5}
        names = set(
            export_columns(schema=schema, kind=kind, options=ExportOptions(**options), conversational=True).names
        )
        got = rows(pairs, schema=schema, kind=kind, conversational=True, **options)
        assert got and all(set(row) == names for _, row in got), fmt


def test_conversational_prompts_and_string_prompts():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    pairs = [
        (item("c", prompt=chat), [human("c", "a", {"overall": 2})]),
        (item("s", prompt="Plain?"), [human("s", "a", {"overall": -1})]),
    ]
    (_, first), (_, second) = rows(pairs, conversational=True)
    assert first["prompt"] == chat
    assert first["chosen"] == [{"role": "assistant", "content": "Hello there."}]
    assert first["rejected"] == [{"role": "assistant", "content": "Hi!"}]
    assert second["prompt"] == [{"role": "user", "content": "Plain?"}]  # one column type per export
    with pytest.raises(ValueError, match="conversational"):
        rows(pairs, conversational=False)
    assert rows(pairs[1:])[0][1]["prompt"] == "Plain?"


def test_ties_go_to_their_own_split_or_are_dropped_and_undecided_items_never_export():
    pairs = [
        (item("tie"), [human("tie", "a", {"overall": 0}), human("tie", "b", {"overall": 0})]),
        (item("split"), [human("split", "a", {"overall": 1}), human("split", "b", {"overall": -1})]),
        (item("win"), [human("win", "a", {"overall": 3})]),
    ]
    for fmt in ("trl", "helpsteer2-preference"):
        counts = ExportCounts()
        split = rows(pairs, format=fmt, ties="split", counts=counts)
        assert [(s, r["id"]) for s, r in split] == [("ties", "tie"), ("train", "win")]
        assert split[0][1]["preference_strength"] == 0.0
        # Labels split 1–1 between A and B: no strict majority, so no winner and no tie either.
        assert counts.dropped["no_majority"] == 1 and counts.ties == 1
        counts = ExportCounts()
        assert [r["id"] for _, r in rows(pairs, format=fmt, ties="drop", counts=counts)] == ["win"]
        assert (counts.dropped["ties"], counts.dropped["no_majority"]) == (1, 1)
    trl_tie = rows(pairs, format="trl")[0][1]
    assert (trl_tie["chosen"], trl_tie["margin"]) == ("Hi!", 0.0)  # a tie keeps the item's A/B order
    # raw rows are labels, not winners: the ties option does not apply to them, nor does a missing majority.
    assert [r["id"] for s, r in rows(pairs, format="raw", ties="drop")] == ["tie", "tie", "split", "split", "win"]


def test_min_agreement_drops_contested_items():
    pairs = [
        (item("clear"), [human("clear", x, {"overall": 2}) for x in "abc"]),
        (
            item("contested"),
            [human("contested", "a", {"overall": 2}), *(human("contested", x, {"overall": -1}) for x in "bc")],
        ),
        (item("judged"), [judge("judged", {"overall": 1})]),
    ]
    counts = ExportCounts()
    kept = rows(pairs, min_agreement=0.7, counts=counts)
    assert [r["id"] for _, r in kept] == ["clear", "judged"]
    assert counts.dropped == {"min_agreement": 1}
    assert [r["agreement"] for _, r in rows(pairs, min_agreement=0.6)] == [1.0, pytest.approx(2 / 3), 1.0]
    assert len(rows(pairs, format="raw", min_agreement=0.7)) == 4
    with pytest.raises(ExportOptionsError) as caught:
        rows([], schema=label_schema.preset("helpsteer2"), kind="rubric", format="ratings", min_agreement=0.5)
    assert caught.value.field == "min_agreement"


def test_metadata_filters():
    pairs = [
        (item("m", metadata={"domain": "math", "tags": ["x", "y"], "flag": True}), [human("m", "a", {"overall": 1})]),
        (item("c", metadata={"domain": "code", "tags": ["z"], "flag": 1}), [human("c", "a", {"overall": 1})]),
        (item("n", metadata={}), [human("n", "a", {"overall": 1})]),
    ]

    def ids(metadata):
        counts = ExportCounts()
        got = [r["id"] for _, r in rows(pairs, metadata=metadata, counts=counts)]
        assert counts.dropped["metadata"] == 3 - len(got)
        return got

    assert ids({"domain": "math"}) == ["m"]
    assert ids({"domain": ["math", "code"]}) == ["m", "c"]
    assert ids({"tags": "z"}) == ["c"]  # a list value matches when it contains the wanted value
    assert ids({"flag": True}) == ["m"]  # True is not the number 1
    assert ids({"domain": "math", "tags": "z"}) == []


def test_date_range_on_label_created_at():
    labels = [human("i", "early", {"overall": -2}, day=0), *(human("i", x, {"overall": 1}, day=5) for x in "ab")]
    pairs = [(item("i"), labels)]
    counts = ExportCounts()
    (_, row), *_ = rows(pairs, format="helpsteer2-preference", created_to="2025-03-02T00:00:00Z", counts=counts)
    assert (row["preference_strength"], row["n_labels"], counts.labels_outside_dates) == (-2.0, 1, 2)
    (_, row), *_ = rows(pairs, format="helpsteer2-preference", created_from="2025-03-02")
    assert [p["rater"] for p in row["individual_preference"]] == ["a", "b"]
    counts = ExportCounts()
    assert rows(pairs, created_from="2026-01-01", counts=counts) == []
    assert counts.dropped == {"no_labels": 1}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(max_size=12), min_size=1, max_size=30),
    st.lists(st.integers(0, 29), max_size=60),
    st.sampled_from([0.1, 0.5, 0.9]),
)
def test_train_test_split_never_shares_a_prompt(prompts, picks, fraction):
    chosen = [prompts[i % len(prompts)] for i in picks] or prompts
    pairs = [
        (item(f"i{n}", prompt=p), [human(f"i{n}", "a", {"overall": 1}), judge(f"i{n}", {"overall": -1})])
        for n, p in enumerate(chosen)
    ]
    splits = defaultdict(set)
    for fmt in ("trl", "raw"):
        for split, row in rows(pairs, format=fmt, test_fraction=fraction):
            splits[split].add(chosen[int(row["id"][1:])])
    assert not splits["train"] & splits["test"]


def test_split_share_is_close_to_test_fraction_and_stable():
    prompts = [f"prompt {n}" for n in range(4000)]
    pairs = [(item(f"i{n}", prompt=p), [human(f"i{n}", "a", {"overall": 1})]) for n, p in enumerate(prompts)]
    got = rows(pairs, test_fraction=0.2)
    share = sum(split == "test" for split, _ in got) / len(got)
    assert 0.18 < share < 0.22
    assert got == rows(pairs, test_fraction=0.2)
    chat = [{"role": "user", "content": "x"}]
    assert prompt_text(chat) == prompt_text([{"content": "x", "role": "user", "name": "ignored"}])


def test_ratings_rows_per_response():
    schema, pairs = campaign(9, kind="both", seed=4)
    got = rows(pairs, schema=schema, kind="both", format="ratings", conversational=True)
    assert {r["response_id"] for _, r in got} == {"a", "b"}
    first = next(r for _, r in got if r["response_id"] == "b")
    source_item = next(i for i, _ in pairs if i["id"] == first["id"])
    assert (first["response"], first["model"]) == (source_item["response_b"], source_item["model_b"])
    rubric_schema, rubric_pairs = campaign(9, kind="rubric", preset="helpsteer2", seed=5)
    single = rows(rubric_pairs, schema=rubric_schema, kind="rubric", format="ratings", conversational=True)
    assert {r["response_id"] for _, r in single} == {""}
    assert all(0 <= r["helpfulness"] <= 4 for _, r in single if r["helpfulness"] is not None)
    with pytest.raises(ExportOptionsError):
        rows(pairs, format="ratings")  # a pairwise-only schema has no criteria to rate


def test_raw_rows_carry_provenance_and_keep_parse_failures():
    routing = {
        "destination": "both",
        "policy": "learned",
        "reason": "gain 0.4",
        "features": [{"feature": "judge_flipped", "value": 1.0, "contribution": 0.8}],
        "decided_at": "2025-02-28T00:00:00+00:00",
    }
    pairs = [
        (
            item("i", routing=routing),
            [
                human("i", "ann-7", {"overall": -2}, swapped=True, justification="A is concise"),
                judge("i", None, day=1),
                judge("i", {"overall": 3}, swapped=True),
            ],
        )
    ]
    got = [r for _, r in rows(pairs, format="raw")]
    assert [r["source"] for r in got] == ["human", "judge", "judge"]
    assert got[0]["annotator"] == "ann-7" and got[0]["position_swapped"] is True and got[0]["seconds"] == 12.5
    assert got[0]["label"] == {"overall": -2} and got[0]["justification"] == "A is concise"
    assert got[1]["parse_failed"] is True and got[1]["label"] == {"overall": None}
    assert (got[2]["judge"], got[2]["judge_model"], got[2]["judge_prompt_version"]) == ("judge-1", "qwen-7b", "v2")
    assert (got[2]["routing_policy"], got[2]["routing_reason"]) == ("learned", "gain 0.4")
    assert {json.loads(r["routing_features"])[0]["contribution"] for r in got} == {0.8}
    unexplained = [r for _, r in rows([(item("j", routing={**routing, "features": None}), pairs[0][1])], format="raw")]
    assert {r["routing_features"] for r in unexplained} == {None}
    assert [r["source"] for _, r in rows(pairs, format="raw", source="human")] == ["human"]


def test_rows_stream_without_reading_everything_first():
    def endless():
        for n in itertools.count():
            yield item(f"i{n}"), [human(f"i{n}", "a", {"overall": 1})]

    stream = export_rows(endless(), schema=PAIRWISE, kind="pairwise", options=ExportOptions())
    assert [row["id"] for _, row in itertools.islice(stream, 3)] == ["i0", "i1", "i2"]


def review(label: dict, reason: str = "B cites the source; A invents one.", day: int = 0) -> dict:
    from . import EPOCH

    return {
        "label": label,
        "reason": reason,
        "revision": 1,
        "adjudicated_at": (EPOCH + timedelta(days=day)).isoformat(),
    }


def test_an_adjudicated_item_exports_the_reviewers_label_with_its_reason():
    contested = [human("c", x, {"overall": v}) for x, v in zip("abc", (-1, 1, 0), strict=True)]
    pairs = [
        ({**item("c"), "adjudication": review({"overall": 2})}, contested),
        (item("plain"), [human("plain", "a", {"overall": -1})]),
    ]
    counts = ExportCounts()
    got = dict((r["id"], r) for _, r in rows(pairs, format="trl", counts=counts, min_agreement=0.9))
    row = got["c"]
    assert (row["chosen"], row["preference_strength"], row["final_source"]) == ("Hello there.", 2.0, "adjudicated")
    assert row["adjudication_reason"] == "B cites the source; A invents one." and row["agreement"] == pytest.approx(
        1 / 3
    )
    assert got["plain"]["final_source"] == "majority" and got["plain"]["adjudication_reason"] == ""
    assert counts.final_sources == {"adjudicated": 1, "majority": 1} and not counts.dropped  # min_agreement spares it
    (_, hs2), _ = rows(pairs, format="helpsteer2-preference")
    assert (hs2["preference_strength"], hs2["final_source"], len(hs2["individual_preference"])) == (
        2.0,
        "adjudicated",
        3,
    )
    raw_rows = [r for _, r in rows(pairs, format="raw") if r["id"] == "c"]
    assert [r["source"] for r in raw_rows] == ["human", "human", "human", "reviewer"]
    assert raw_rows[-1]["label"]["overall"] == 2 and raw_rows[-1]["annotator"] is None
    assert raw_rows[-1]["justification"] == "B cites the source; A invents one."
    assert all(r["source"] != "reviewer" for _, r in rows(pairs, format="raw", source="judge"))
    # A review made outside the date range counts no more than a label made there.
    late = [({**item("c"), "adjudication": review({"overall": 2}, day=30)}, contested)]
    counts = ExportCounts()
    assert rows(late, format="trl", counts=counts, created_to="2025-03-10") == []
    assert counts.dropped["no_majority"] == 1


def test_labels_that_do_not_count_are_left_out_and_counted():
    pairs = [
        (
            item("x"),
            [
                human("x", "a", {"overall": -1}),
                {**human("x", "excluded", {"overall": 1}), "uncounted": "excluded_annotator"},
                {**human("x", "fast", {"overall": 1}), "uncounted": "too_fast"},
                {**human("x", "trainee", {"overall": 1}), "uncounted": "qualification"},
            ],
        )
    ]
    for fmt in ("trl", "raw"):
        counts = ExportCounts()
        got = rows(pairs, format=fmt, counts=counts)
        assert [r.get("annotator", "a") for _, r in got] == ["a"]
        assert counts.dropped == {"excluded_annotator": 1, "too_fast": 1, "qualification": 1}
    assert rows(pairs, format="trl")[0][1]["n_labels"] == 1


def test_dawid_skene_outvotes_planted_always_a_annotators():
    rng = random.Random(4)
    pairs, truth = [], {}
    for i in range(200):
        truth[f"i{i}"] = t = rng.choice([-1, 1])
        labels = [human(f"i{i}", f"good-{g}", {"overall": t if rng.random() < 0.85 else -t}) for g in range(2)]
        labels += [human(f"i{i}", f"always-a-{s}", {"overall": -1}) for s in range(3)]
        pairs.append((item(f"i{i}"), labels))
    accuracy = {}
    for aggregation in ("majority", "dawid_skene"):
        got = rows(pairs, schema=label_schema.preset("simple-pairwise"), format="trl", aggregation=aggregation)
        assert {r["final_source"] for _, r in got} == {aggregation}
        accuracy[aggregation] = (
            sum((1 if r["chosen"] == "Hello there." else -1) == truth[r["id"]] for _, r in got) / 200
        )
    assert accuracy["majority"] < 0.6 < 0.75 < accuracy["dawid_skene"]
    with pytest.raises(ValueError, match="reads the data twice"):
        rows(iter(pairs), format="trl", aggregation="dawid_skene")


def test_soft_labels_column_when_asked_for():
    pairs = [(item("x"), [human("x", "a", {"overall": -3}), human("x", "b", {"overall": -1})])]
    (_, row) = rows(pairs, format="trl", soft_labels=True)[0]
    assert row["soft_labels"] == [0.5, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert "soft_labels" not in rows(pairs, format="trl")[0][1]
