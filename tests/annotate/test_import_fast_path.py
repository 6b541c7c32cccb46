"""What the fast import path relies on: rows parsed exactly as before, ids compared as bytes, and the
ORM keeping the constraints the database no longer checks for bulk-written rows."""

import time

import pytest
from django.db import connection
from django.db.models.signals import pre_delete

from annotate.models import Campaign, Item, RoutingDecision
from annotate.schema import preset
from annotate.services.imports import ImportFailed, items_import
from annotate.services.imports.rows import RowProblem, item_row_parse
from tests.conftest import jsonl, pair

SCHEMA = preset("simple-pairwise")


def parse(row, kind="pairwise"):
    return item_row_parse(row, kind=kind, schema=SCHEMA)


def test_unknown_columns_go_to_metadata_whatever_layout_keys_are_half_present():
    # model_b is absent: its layout is still chosen, and every other column is kept.
    item = parse({**pair(1), "model_a": "m1", "uid": "u1", "chosen": "x", "foo": 1} | {"rejected": "y"})
    assert item.external_id == "p1" and (item.response_a, item.response_b) == ("Answer A1", "Answer B1")
    assert (item.model_a, item.model_b) == ("m1", "")
    # "uid" is an id key, but "id" came first; the second pair layout was not the one used.
    assert item.metadata == {"uid": "u1", "chosen": "x", "rejected": "y", "foo": 1}


def test_metadata_null_is_refused_and_absent_metadata_is_empty():
    with pytest.raises(RowProblem) as info:
        parse({**pair(1), "metadata": None})
    assert (info.value.field, str(info.value)) == ("metadata", "must be a JSON object")
    assert parse(pair(1)).metadata == {}
    assert parse({**pair(1), "metadata": '{"a": 1}'}).metadata == {"a": 1}  # a CSV cell's JSON


def test_a_column_that_is_also_a_metadata_key_is_refused():
    with pytest.raises(RowProblem) as info:
        parse({**pair(1), "metadata": {"domain": "a"}, "domain": "b"})
    assert info.value.field == "domain" and "both a column and a key of metadata" in str(info.value)


def test_a_prompt_with_leading_whitespace_is_still_read_as_messages():
    item = parse({**pair(1), "prompt": '  \n[{"role": "user", "content": "hi"}]'})
    assert item.prompt == [{"role": "user", "content": "hi"}]
    assert parse({**pair(1), "prompt": " [1, 2]"}).prompt == " [1, 2]"


@pytest.mark.django_db
def test_item_ids_sort_as_bytes_on_every_database(campaign):
    items_import(campaign=campaign, stream=jsonl(pair("a"), pair("B"), pair("é"), pair("_")), filename="i.jsonl")
    ids = list(Item.objects.filter(campaign=campaign).order_by("external_id").values_list("external_id", flat=True))
    assert ids == ["pB", "p_", "pa", "pé"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'annotate_item' AND column_name = 'external_id'"
            )
            assert cursor.fetchone()[0] == "C"


@pytest.mark.django_db
def test_a_duplicate_id_is_still_refused_by_the_unique_index_after_the_collation_change(campaign):
    with pytest.raises(ImportFailed) as info:
        items_import(campaign=campaign, stream=jsonl(pair("x"), pair("x")), filename="i.jsonl")
    assert "duplicate id 'px' (first at line 1)" in str(info.value)


@pytest.mark.django_db(transaction=True)
def test_deleting_a_campaign_removes_rows_an_import_committed_while_it_was_being_deleted():
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(preset_name="simple-pairwise")
    items_import(campaign=campaign, stream=jsonl(pair(1), pair(2)), filename="i.jsonl")
    other = CampaignFactory(preset_name="simple-pairwise")
    items_import(campaign=other, stream=jsonl(pair(1)), filename="i.jsonl")

    def late_import(sender, instance, **kwargs):
        # What a concurrent import's commit looks like from the deleting transaction: rows that
        # appear after the ORM listed the campaign's items, which no foreign key refuses now.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO annotate_item (campaign_id, external_id, prompt, response_a, response_b, model_a,"
                " model_b, response, reference, metadata, gold_explanation, route, content_hash,"
                " human_label_count, assigned_count, queue_rank, extra_labels, review_state, created_at)"
                " VALUES (%s, 'late', '\"P\"', 'a', 'b', '', '', '', '', '{}', '', 'human', 'h', 0, 0, 0, 0, '',"
                " CURRENT_TIMESTAMP)",
                [instance.pk],
            )
            cursor.execute(
                "INSERT INTO annotate_routingdecision (campaign_id, item_id, destination, policy, reason, created_at)"
                " SELECT campaign_id, id, 'human', 'all_human', '', CURRENT_TIMESTAMP FROM annotate_item"
                " WHERE campaign_id = %s AND external_id = 'late'",
                [instance.pk],
            )

    pk = campaign.pk  # (delete() sets it to None)
    pre_delete.connect(late_import, sender=Campaign, dispatch_uid="test.late_import")
    try:
        campaign.delete()
    finally:
        pre_delete.disconnect(sender=Campaign, dispatch_uid="test.late_import")
    assert not Item.objects.filter(campaign_id=pk).exists()
    assert not RoutingDecision.objects.filter(campaign_id=pk).exists()
    assert Item.objects.filter(campaign=other).count() == 1  # the other campaign is untouched
    assert RoutingDecision.objects.filter(campaign=other).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_import_does_not_wait_for_a_lock_an_autovacuum_would_hold_on_the_item_table():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's ANALYZE and autovacuum")
    import psycopg

    from tests.conftest import subprocess_env
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(preset_name="simple-pairwise")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '20s'")  # without the import's own limit, ANALYZE would wait this long
    try:
        with psycopg.connect(subprocess_env(connection)["DATABASE_URL"]) as holder:
            holder.execute("LOCK TABLE annotate_item IN SHARE UPDATE EXCLUSIVE MODE")  # what (auto)vacuum holds
            started = time.monotonic()
            report = items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(1200)]), filename="i.jsonl")
            waited = time.monotonic() - started
        assert report.created == 1200 and Item.objects.filter(campaign=campaign).count() == 1200
        assert waited < 10, f"the import waited {waited:.1f} s for the table's lock"
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "20s", "the session's own setting is left as it was"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
