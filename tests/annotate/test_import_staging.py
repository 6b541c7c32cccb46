"""The checked item import on its staging table: the same answers as row by row, memory flat in the file."""

import gc
import io
import tracemalloc

import pytest
from django.db import connection

from annotate.models import Campaign, Item, RoutingDecision
from annotate.services.imports import ImportFailed, items_import
from annotate.services.imports.columns import queue_rank
from annotate.services.imports.rows import item_row_parse
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def run(campaign, stream, filename="items.jsonl", **kw):
    return items_import(campaign=campaign, stream=stream, filename=filename, **kw)


def snapshot(campaign):
    """Everything an import could touch: the campaign's row, its items and their routing decisions."""
    return (
        Campaign.objects.filter(pk=campaign.pk).values().get(),
        list(Item.objects.filter(campaign=campaign).order_by("pk").values()),
        list(RoutingDecision.objects.filter(campaign=campaign).order_by("pk").values()),
    )


@pytest.fixture
def stocked(campaign):
    """A campaign holding p1..p3, so every import into it takes the checked pass."""
    run(campaign, jsonl(pair(1), pair(2), pair(3)), filename="first.jsonl")
    return campaign


MIXED = [
    pair(1),  # line 1: unchanged
    pair(2, response_b="Changed", model_a="m9"),  # line 2: a conflict
    pair(4),  # line 3: new
    pair(5),  # line 4: new
    pair(4),  # line 5: repeats line 3
]


def test_a_reimport_finds_new_unchanged_conflicting_and_repeated_rows(stocked):
    before = snapshot(stocked)
    with pytest.raises(ImportFailed) as info:
        run(stocked, jsonl(*MIXED))
    assert [str(e) for e in info.value.errors] == [
        "items.jsonl, line 5, field 'id': duplicate id 'p4' (first at line 3)"
    ]
    assert snapshot(stocked) == before

    report = run(stocked, jsonl(*MIXED), dry_run=True)
    assert report.as_dict() == {
        "rows": 5,
        "created": 2,
        "unchanged": 1,
        "conflicts": 1,
        "conflict_rows": [
            {
                "id": "p2",
                "where": "line 2",
                "fields": ["response_b", "model_a"],
                "message": "an item with this id exists with different content; it was left unchanged",
            }
        ],
        "dry_run": True,
        "valid": False,
        "errors": [
            {
                "file": "items.jsonl",
                "where": "line 5",
                "field": "id",
                "message": "duplicate id 'p4' (first at line 3)",
            }
        ],
    }
    assert snapshot(stocked) == before

    report = run(stocked, jsonl(*MIXED[:4]))
    assert (report.rows, report.created, report.unchanged, report.n_conflicts) == (4, 2, 1, 1)
    assert report.conflicts[0]["fields"] == ["response_b", "model_a"]
    items = list(Item.objects.filter(campaign=stocked).order_by("pk"))
    assert [i.external_id for i in items] == ["p1", "p2", "p3", "p4", "p5"], "new rows go in in file order"
    assert items[1].response_b == "Answer B2", "a conflicting row leaves the item as it was"
    p5 = items[4]
    assert (p5.prompt, p5.response_a, p5.response_b, p5.metadata, p5.gold_label) == (
        "Question 5?",
        "Answer A5",
        "Answer B5",
        {},
        None,
    )
    assert p5.queue_rank == queue_rank(stocked.pk, "p5") and p5.route == "human" and p5.created_at is not None
    parsed = item_row_parse(pair(5), kind=stocked.kind, schema=stocked.label_schema)
    assert (p5.human_label_count, p5.assigned_count, p5.content_hash) == (0, 0, parsed.content_hash)
    assert RoutingDecision.objects.filter(campaign=stocked).count() == 5
    again = run(stocked, jsonl(*MIXED[:4]))
    assert (again.created, again.unchanged, again.n_conflicts) == (0, 3, 1), "a re-import is idempotent"


def test_problems_found_in_python_and_in_sql_come_in_file_order(stocked):
    rows = [pair(4), {"id": "p5", "prompt": "Q"}, pair(6), pair(4), "{broken", pair(6), pair(7)]
    with pytest.raises(ImportFailed) as info:
        run(stocked, jsonl(*rows))
    assert [(e.where, e.field) for e in info.value.errors] == [
        ("line 2", "response_a"),
        ("line 4", "id"),
        ("line 5", ""),
        ("line 6", "id"),
    ]
    assert info.value.errors[3].message == "duplicate id 'p6' (first at line 3)"


def test_a_renamed_id_column_is_named_in_the_duplicate_error(stocked):
    rows = [{**pair(i), "qid": f"q{i}"} for i in (7, 8, 7)]
    for row in rows:
        del row["id"]
    with pytest.raises(ImportFailed) as info:
        run(stocked, jsonl(*rows), mapping={"id": "qid"})
    assert (
        str(info.value.errors[0])
        == "items.jsonl, line 3, field 'id (column 'qid')': duplicate id 'q7' (first at line 1)"
    )


def test_a_dry_run_writes_nothing(stocked):
    before = snapshot(stocked)
    rows = [pair(1), pair(3, prompt="Other"), *(pair(i) for i in range(10, 40))]
    report = run(stocked, jsonl(*rows), dry_run=True)
    assert (report.rows, report.created, report.unchanged, report.n_conflicts, report.valid) == (32, 30, 1, 1, True)
    assert report.conflicts[0]["fields"] == ["prompt"]
    assert snapshot(stocked) == before


def test_at_most_max_errors_and_the_counts_stop_where_checking_stopped(campaign):
    # 10 new rows, a broken line (not a row), then repeats and bad rows by turns: 60 problems.
    rows = [pair(i) for i in range(10)] + ["{broken"]
    for n in range(59):
        rows.append(pair(n % 10) if n % 2 == 0 else {"id": f"x{n}", "prompt": "Q"})
    report = run(campaign, jsonl(*rows), dry_run=True)
    assert len(report.errors) == ImportFailed.MAX_ERRORS
    assert report.errors[0].where == "line 11" and report.errors[-1].where == "line 60"
    assert report.errors[1].message == "duplicate id 'p0' (first at line 1)"
    # Row by row, checking stopped at line 60: 59 rows read (the broken line is none), 10 of them new.
    assert (report.rows, report.created, report.unchanged, report.n_conflicts) == (59, 10, 0, 0)
    with pytest.raises(ImportFailed) as info:
        run(campaign, jsonl(*rows))
    assert [e.as_dict() for e in info.value.errors] == [e.as_dict() for e in report.errors]
    assert not Item.objects.filter(campaign=campaign).exists()


def test_a_failed_checked_import_leaves_the_campaign_as_it_was(stocked):
    before = snapshot(stocked)
    rows = [pair(1), pair(2, response_a="Changed"), *(pair(i) for i in range(10, 3000)), {"id": "bad"}]
    with pytest.raises(ImportFailed) as info:
        run(stocked, jsonl(*rows))
    assert info.value.errors[0].where == "line 2993"
    assert snapshot(stocked) == before
    # The failed import's stage went with it: the next import in the same transaction starts clean.
    report = run(stocked, jsonl(*rows[:-1]))
    assert (report.created, report.unchanged, report.n_conflicts) == (2990, 1, 1)


def _checked_reimport_peak(campaign, rows: int) -> int:
    data = jsonl(*(pair(i) for i in range(rows))).getvalue()
    run(campaign, jsonl(*(pair(i) for i in range(rows))))  # the first import: every later one is checked
    gc.collect()
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        report = run(campaign, stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.unchanged == rows
    return peak


def test_a_checked_reimport_keeps_memory_flat_in_the_file_and_the_campaign(db):
    small = _checked_reimport_peak(CampaignFactory(preset_name="simple-pairwise"), 5_000)
    large = _checked_reimport_peak(CampaignFactory(preset_name="simple-pairwise"), 40_000)
    # Dicts of the file's and the campaign's ids grew by 11 MB from 5k to 40k of these rows. What may
    # grow now is psycopg's COPY queue while the server lags behind (bounded, ~32 MB): under 2 MB here.
    assert large - small < 4_000_000, (connection.vendor, small, large)
