"""bench/annotate_flow.py: the campaign it fills in SQL is a real queue, and server CPU is read from /proc."""

import os
import signal
import subprocess
import sys
import time

import pytest

from annotate.models import Assignment, Item
from annotate.services.assignments import next_assignment_for
from annotate.services.imports import items_import
from bench import annotate_flow
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory


@pytest.mark.django_db
def test_copied_items_fill_the_campaign_with_unique_ids_and_fresh_ranks():
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=3)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(5)]), filename="items.jsonl")
    assert annotate_flow._copy_items(campaign=campaign, items=13) == 8
    rows = list(Item.objects.filter(campaign=campaign).values_list("external_id", "queue_rank", "route"))
    assert len(rows) == 13
    assert len({external_id for external_id, _, _ in rows}) == 13
    assert len({rank for _, rank, _ in rows}) == 13
    assert {route for _, _, route in rows} == {Item.Route.HUMAN}
    assert annotate_flow._copy_items(campaign=campaign, items=13) == 0  # already full
    assert isinstance(next_assignment_for(annotator=UserFactory(), campaign=campaign), Assignment)


def test_the_server_cpu_counts_the_workers_of_the_master():
    # A master (that only waits) and a worker that burns CPU, then idles: as gunicorn's processes.
    worker = "sum(range(100_000_000)); import time; time.sleep(60)"
    master = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])"
    process = subprocess.Popen([sys.executable, "-c", master], start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while annotate_flow._tree_cpu_s(process.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert annotate_flow._tree_cpu_s(process.pid) >= 0.3  # the master alone uses a few hundredths
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_percentiles_are_taken_from_the_sorted_samples():
    summary = annotate_flow.summarize([float(v) for v in range(1, 101)])
    assert (summary["p50"], summary["p95"], summary["p99"], summary["n"]) == (51.0, 95.0, 99.0, 100)
